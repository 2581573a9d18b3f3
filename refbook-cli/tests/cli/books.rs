//! `refbook-cli book` and `refbook-cli books import`.

use refbook_core::backend_tests;
use refbook_core::testing::book_sources::no_source_has_it;
use refbook_core::testing::TestDatabase;
use serde_json::{json, Value};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::run::{assert_clean_failure, cli, temp_file};

async fn douban(server: &MockServer) {
    Mock::given(path("/v2/book/isbn/9787536692930"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "title": "三体", "author": ["刘慈欣"], "publisher": "重庆出版社", "pubdate": "2008-1",
            "pages": "302", "summary": "文化大革命如火如荼进行的同时……", "author_intro": "中国科幻作家。",
            "tags": [{"name": "科幻"}], "isbn10": "junk"
        })))
        .mount(server)
        .await;
}

async fn book_prints_a_readable_summary_or_the_json(db: TestDatabase) {
    let server = MockServer::start().await;
    douban(&server).await;
    let readable = cli(db.url(), &server, &["book", "978-7-5366-9293-0"], "", &[]).await;
    assert_eq!(readable.code, 0, "{}", readable.stderr);
    for expected in [
        "三体",
        "by 刘慈欣",
        "重庆出版社",
        "302 pages",
        "ISBN-13 9787536692930",
        "ISBN-10 7536692935",
        "About the book",
        "文化大革命",
    ] {
        assert!(
            readable.stdout.contains(expected),
            "{expected} missing:\n{}",
            readable.stdout
        );
    }
    let zh = cli(
        db.url(),
        &server,
        &["book", "7536692935"],
        "",
        &[("LANG", "zh_CN.UTF-8")],
    )
    .await;
    assert!(
        zh.stdout.contains("作者：刘慈欣") && zh.stdout.contains("简介"),
        "{}",
        zh.stdout
    );

    let json = cli(
        db.url(),
        &server,
        &["book", "9787536692930", "--json"],
        "",
        &[],
    )
    .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let book: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(book["isbn"], "9787536692930");
    assert_eq!(book["author"], "刘慈欣");
    assert_eq!(book["source"], "douban");
    let calls = server.received_requests().await.unwrap().len();
    assert_eq!(calls, 1, "later runs read the stored copy");
}

async fn bad_isbns_and_unknown_books_fail_cleanly(db: TestDatabase) {
    let server = MockServer::start().await;
    no_source_has_it(&server).await;
    let bad = cli(db.url(), &server, &["book", "9787536692931"], "", &[]).await;
    assert_clean_failure(&bad, "check digit");
    assert!(bad.stdout.is_empty());
    let unknown = cli(db.url(), &server, &["book", "9787020002207"], "", &[]).await;
    assert_clean_failure(&unknown, "not found");
    assert!(unknown.stderr.contains("hint:"));
}

async fn a_catalogue_is_imported_and_used(db: TestDatabase) {
    let server = MockServer::start().await;
    no_source_has_it(&server).await;
    let csv = temp_file(
        "catalogue.csv",
        "isbn,title,authors,publisher,pages,introduction,tags\n\
         978-7-02-000220-7,红楼梦,曹雪芹;高鹗,人民文学出版社,1606,中国古典小说,古典;小说\n\
         0140328726,Fantastic Mr. Fox,Roald Dahl,Puffin,96,,\n",
    );
    let imported = cli(
        db.url(),
        &server,
        &["books", "import", csv.to_str().unwrap()],
        "",
        &[],
    )
    .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert!(
        imported.stdout.contains("imported 2 book(s)"),
        "{}",
        imported.stdout
    );

    let shown = cli(
        db.url(),
        &server,
        &["book", "702000220X", "--json"],
        "",
        &[],
    )
    .await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let book: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(book["title"], "红楼梦");
    assert_eq!(book["authors"], json!(["曹雪芹", "高鹗"]));
    assert_eq!(book["source"], "catalog");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "the catalogue answered first"
    );

    let json_file = temp_file(
        "more.json",
        r#"[{"isbn": "9780262033848", "title": "Introduction to Algorithms", "authors": ["Cormen"]}]"#,
    );
    let imported = cli(
        db.url(),
        &server,
        &["books", "import", json_file.to_str().unwrap()],
        "",
        &[],
    )
    .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
}

async fn a_bad_catalogue_imports_nothing(db: TestDatabase) {
    let server = MockServer::start().await;
    no_source_has_it(&server).await;
    let csv = temp_file(
        "bad.csv",
        "isbn,title\n9787536692930,三体\n9787536692931,bad checksum\n9787544253994,\n",
    );
    let failed = cli(
        db.url(),
        &server,
        &["books", "import", csv.to_str().unwrap()],
        "",
        &[],
    )
    .await;
    assert_clean_failure(&failed, "nothing was imported");
    assert!(
        failed.stderr.contains("row 3") && failed.stderr.contains("row 4"),
        "{}",
        failed.stderr
    );
    let lookup = cli(db.url(), &server, &["book", "9787536692930"], "", &[]).await;
    assert_clean_failure(&lookup, "not found");

    let missing = cli(
        db.url(),
        &server,
        &["books", "import", "/no/such/file.csv"],
        "",
        &[],
    )
    .await;
    assert_clean_failure(&missing, "cannot read");
}

async fn a_bad_setting_names_its_variable(db: TestDatabase) {
    let server = MockServer::start().await;
    let out = cli(
        db.url(),
        &server,
        &["book", "9787536692930"],
        "",
        &[("REFBOOK_BOOK_SOURCES", "douban,amazon")],
    )
    .await;
    assert_clean_failure(&out, "REFBOOK_BOOK_SOURCES");
}

/// A server's configuration file works for the CLI: the keys it reads apply, the
/// server's own (`bind`) and a misspelt one are named once on stderr, and the run goes on.
async fn a_servers_file_applies_and_names_what_the_cli_does_not_use(db: TestDatabase) {
    let server = MockServer::start().await;
    douban(&server).await;
    let file = temp_file(
        "refbook.toml",
        "bind = \"0.0.0.0:9000\"\nbook_sources = [\"douban\"]\nbok_ttl_days = 3\n",
    );
    let out = cli(
        db.url(),
        &server,
        &["--config", file.to_str().unwrap(), "book", "9787536692930"],
        "",
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("三体"), "{}", out.stdout);
    let notes: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("note:"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", out.stderr);
    assert!(
        notes[0].contains("bind") && notes[0].contains("bok_ttl_days"),
        "{}",
        notes[0]
    );
    assert!(!notes[0].contains("book_sources"), "{}", notes[0]);
}

async fn a_books_text_is_added_listed_searched_and_removed(db: TestDatabase) {
    let server = MockServer::start().await;
    let play = temp_file(
        "hamlet.md",
        "# Hamlet\n\n## ACT III\n\n### SCENE IV. The Queen's closet.\n\n\
         POLONIUS hides behind the arras. Hamlet stabs through the arras and kills Polonius.\n\n\
         ## ACT V\n\n### SCENE II. A hall in the castle.\n\nThe duel with Laertes; the poisoned cup.\n",
    );
    let run = |args: Vec<String>| {
        let server = &server;
        let url = db.url().to_owned();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&url, server, &args, "", &[]).await
        }
    };
    let add = vec![
        "books".to_owned(),
        "text".to_owned(),
        "add".to_owned(),
        "--isbn".to_owned(),
        "9780140714548".to_owned(),
        play.to_str().unwrap().to_owned(),
    ];
    let added = run(add.clone()).await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(added.stdout.contains("sections"), "{}", added.stdout);
    let again = run(add).await;
    assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
    let listed = run(vec!["books".into(), "text".into(), "list".into()]).await;
    assert!(listed.stdout.contains("9780140714548"), "{}", listed.stdout);
    assert!(listed.stdout.contains("markdown"), "{}", listed.stdout);
    let found = run(vec![
        "books".into(),
        "text".into(),
        "search".into(),
        "--isbn".into(),
        "978-0-14-071454-8".into(),
        "who killed Polonius".into(),
    ])
    .await;
    assert_eq!(found.code, 0, "{}", found.stderr);
    assert!(
        found
            .stdout
            .starts_with("[1] SCENE IV. The Queen's closet."),
        "{}",
        found.stdout
    );
    let removed = run(vec![
        "books".into(),
        "text".into(),
        "remove".into(),
        "--isbn".into(),
        "9780140714548".into(),
    ])
    .await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    let gone = run(vec![
        "books".into(),
        "text".into(),
        "search".into(),
        "--isbn".into(),
        "9780140714548".into(),
        "Polonius".into(),
    ])
    .await;
    assert_clean_failure(&gone, "has no text");
}

backend_tests!(
    a_books_text_is_added_listed_searched_and_removed,
    a_servers_file_applies_and_names_what_the_cli_does_not_use,
    book_prints_a_readable_summary_or_the_json,
    bad_isbns_and_unknown_books_fail_cleanly,
    a_catalogue_is_imported_and_used,
    a_bad_catalogue_imports_nothing,
    a_bad_setting_names_its_variable,
);
