//! `/api/books/…` against stand-ins for Douban, Open Library and Google Books.

use refbook_core::backend_tests;
use refbook_core::testing::book_sources::{
    douban_miss, google_miss, no_source_has_it, openlibrary_miss,
};
use refbook_core::testing::TestDatabase;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::browser::tiny_png;
use crate::helpers::{spawn_app, spawn_app_with, token, TestApp};

const SANTI: &str = "9787536692930";
const FOX: &str = "9780140328721";

async fn douban_hit(
    server: &MockServer,
    isbn: &str,
    title: &str,
    author: &str,
    cover: Option<String>,
) {
    let cover = cover
        .unwrap_or_else(|| "https://img3.doubanio.com/f/shire/x/pics/book-default-lpic.gif".into());
    Mock::given(method("GET"))
        .and(path(format!("/v2/book/isbn/{isbn}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "1", "isbn10": "junk", "isbn13": isbn, "title": title, "subtitle": "",
            "author": [author], "translator": [], "publisher": "重庆出版社", "pubdate": "2008-1",
            "pages": "302", "price": "23.00元", "rating": {"average": "9.4"},
            "tags": [{"count": 1, "name": "科幻", "title": "科幻"}],
            "image": cover, "images": {"large": cover},
            "author_intro": "中国科幻作家。", "summary": "文化大革命如火如荼进行的同时……"
        })))
        .mount(server)
        .await;
}

async fn user(app: &TestApp) -> String {
    token(&app.register("reader").await).to_owned()
}

async fn a_book_is_found_by_any_isbn_form_and_cached(db: TestDatabase) {
    let app = spawn_app(db).await;
    let cover = format!("{}/view/subject/l/public/s2768378.jpg", app.books.uri());
    douban_hit(&app.books, SANTI, "三体", "刘慈欣", Some(cover)).await;
    let t = user(&app).await;
    let reply = app.get("/api/books/978-7-5366-9293-0/", Some(&t)).await;
    let book = reply.assert_ok();
    assert_eq!(book["isbn"], SANTI);
    assert_eq!(book["isbn10"], "7536692935");
    assert_eq!(book["title"], "三体");
    assert!(book["subtitle"].is_null());
    assert_eq!(book["author"], "刘慈欣");
    assert_eq!(book["authors"], json!(["刘慈欣"]));
    assert_eq!(book["translators"], json!([]));
    assert_eq!(book["pages"], 302);
    assert_eq!(book["tags"], json!(["科幻"]));
    assert_eq!(book["source"], "douban");
    assert_eq!(book["cover_url"], format!("/api/books/{SANTI}/cover/"));
    assert!(book["updated_at"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<_> = book.as_object().unwrap().keys().cloned().collect();
    for key in [
        "isbn",
        "isbn10",
        "title",
        "subtitle",
        "author",
        "authors",
        "translators",
        "publisher",
        "published",
        "pages",
        "introduction",
        "author_intro",
        "cover_url",
        "tags",
        "source",
        "updated_at",
    ] {
        assert!(keys.contains(&key.to_owned()), "{key} missing");
    }
    for form in ["7536692935", "ISBN%20978-7-5366-9293-0", "%EF%BC%99%EF%BC%97%EF%BC%98%EF%BC%97%EF%BC%95%EF%BC%93%EF%BC%96%EF%BC%96%EF%BC%99%EF%BC%92%EF%BC%99%EF%BC%93%EF%BC%90"] {
        let again = app.get(&format!("/api/books/{form}"), Some(&t)).await;
        assert_eq!(again.assert_ok()["title"], "三体", "{form}");
    }
    let douban_calls = app
        .books
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/v2/"))
        .count();
    assert_eq!(douban_calls, 1, "stored after the first lookup");
    app.get(&format!("/api/books/{SANTI}/"), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn bad_isbns_are_400(db: TestDatabase) {
    let app = spawn_app(db).await;
    let t = user(&app).await;
    for bad in [
        "9787536692931",
        "7020002207",
        "9771234567003",
        "12345",
        "abc",
    ] {
        let reply = app.get(&format!("/api/books/{bad}/"), Some(&t)).await;
        reply.assert_error(400, "INVALID_PARAMS");
        assert_eq!(reply.body["details"]["field"], "isbn");
    }
    assert!(app.books.received_requests().await.unwrap().is_empty());
}

async fn sources_are_asked_in_order(db: TestDatabase) {
    let app = spawn_app(db).await;
    douban_miss(&app.books).await;
    Mock::given(path(format!("/isbn/{FOX}.json")))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "/books/OL7353617M.json"),
        )
        .mount(&app.books)
        .await;
    Mock::given(path("/books/OL7353617M.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "title": "Fantastic Mr. Fox", "authors": [{"key": "/authors/OL34184A"}],
            "publishers": ["Puffin"], "number_of_pages": 96, "covers": [8739161],
            "description": "A fox."
        })))
        .mount(&app.books)
        .await;
    Mock::given(path("/authors/OL34184A.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "Roald Dahl"})))
        .mount(&app.books)
        .await;
    Mock::given(path("/books/v1/volumes"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&app.books)
        .await;
    let t = user(&app).await;
    let reply = app.get("/api/books/0140328726/", Some(&t)).await;
    let book = reply.assert_ok();
    assert_eq!(book["source"], "openlibrary");
    assert_eq!(book["author"], "Roald Dahl");
    assert_eq!(book["isbn"], FOX);
}

async fn unknown_everywhere_is_404_and_all_failing_is_503(db: TestDatabase) {
    let app = spawn_app(db).await;
    no_source_has_it(&app.books).await;
    let t = user(&app).await;
    app.get(&format!("/api/books/{SANTI}/"), Some(&t))
        .await
        .assert_error(404, "NOT_FOUND");

    let failing = spawn_app(
        TestDatabase::create(refbook_core::testing::TestBackend::Sqlite)
            .await
            .unwrap(),
    )
    .await;
    Mock::given(wiremock::matchers::path_regex("^/v2/book/isbn/"))
        .respond_with(ResponseTemplate::new(403).set_body_string("<html>douban says no</html>"))
        .mount(&failing.books)
        .await;
    Mock::given(wiremock::matchers::path_regex("^/isbn/"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&failing.books)
        .await;
    Mock::given(path("/books/v1/volumes"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})),
        )
        .mount(&failing.books)
        .await;
    let t = user(&failing).await;
    let reply = failing.get(&format!("/api/books/{SANTI}/"), Some(&t)).await;
    reply.assert_error(503, "UPSTREAM_UNAVAILABLE");
    assert!(!reply.text.contains("douban says no") && !reply.text.contains("RESOURCE_EXHAUSTED"));
}

async fn slow_sources_time_out(db: TestDatabase) {
    let app = spawn_app(db).await;
    Mock::given(wiremock::matchers::path_regex("^/v2/book/isbn/"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(10)))
        .mount(&app.books)
        .await;
    openlibrary_miss(&app.books).await;
    google_miss(&app.books).await;
    let t = user(&app).await;
    let started = std::time::Instant::now();
    app.get(&format!("/api/books/{SANTI}/"), Some(&t))
        .await
        .assert_error(404, "NOT_FOUND");
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
}

async fn search_pages_through_stored_books(db: TestDatabase) {
    let app = spawn_app(db).await;
    douban_hit(&app.books, SANTI, "三体", "刘慈欣", None).await;
    douban_hit(
        &app.books,
        "9787536692930"
            .replace("9787536692930", "9787020002207")
            .as_str(),
        "红楼梦",
        "曹雪芹",
        None,
    )
    .await;
    douban_hit(&app.books, FOX, "Fantastic Mr. Fox", "Roald Dahl", None).await;
    let t = user(&app).await;
    for isbn in [SANTI, "9787020002207", FOX] {
        app.get(&format!("/api/books/{isbn}/"), Some(&t))
            .await
            .assert_ok();
    }
    let reply = app.get("/api/books/?q=%E4%B8%89%E4%BD%93", Some(&t)).await;
    let body = reply.assert_ok();
    assert_eq!(body["count"], 1);
    assert_eq!(body["results"][0]["title"], "三体");
    assert!(body["next"].is_null() && body["previous"].is_null());
    assert_eq!(
        body["results"][0]["cover_url"],
        serde_json::Value::Null,
        "book-default is no cover"
    );

    let by_author = app.get("/api/books/?q=DAHL", Some(&t)).await;
    assert_eq!(by_author.assert_ok()["results"][0]["isbn"], FOX);

    let first = app.get("/api/books/?limit=2", Some(&t)).await;
    let first = first.assert_ok();
    assert_eq!(first["count"], 3);
    assert_eq!(first["results"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap();
    // A path (no REFBOOK_PUBLIC_URL): never built from the request's Host header.
    assert!(
        next.starts_with("/api/books/?") && next.contains("offset=2") && next.contains("limit=2"),
        "{next}"
    );
    let second = app
        .send(app.client.get(app.url(next)).bearer_auth(&t))
        .await;
    let second = second.assert_ok();
    assert_eq!(second["results"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null());
    assert!(second["previous"].as_str().unwrap().contains("offset=0"));
    let skipped = app.get("/api/books/?limit=1&skip=1", Some(&t)).await;
    assert_eq!(skipped.assert_ok()["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        skipped.body["previous"]
            .as_str()
            .map(|p| p.contains("offset=0")),
        Some(true)
    );
    let spoofed = app
        .send(
            app.client
                .get(app.url("/api/books/?limit=1"))
                .header("host", "evil.example")
                .bearer_auth(&t),
        )
        .await;
    assert!(!spoofed.text.contains("evil.example"), "{}", spoofed.text);
    let huge = app
        .get("/api/books/?offset=9223372036854775807&limit=100", Some(&t))
        .await;
    let huge = huge.assert_ok();
    assert!(huge["next"].is_null());
    let back = huge["previous"].as_str().unwrap();
    assert!(!back.contains("offset=-"), "{back}");
    let clamped = app.get("/api/books/?limit=1000", Some(&t)).await;
    assert_eq!(clamped.assert_ok()["results"].as_array().unwrap().len(), 3);
    app.get("/api/books/?limit=abc", Some(&t))
        .await
        .assert_error(400, "INVALID_PARAMS");
    app.get("/api/books/?q=%25", Some(&t)).await.assert_ok();
    assert_eq!(
        app.get("/api/books/?q=%25", Some(&t)).await.body["count"],
        0,
        "% is literal"
    );
    app.get("/api/books/", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 0xFF, 0xD9,
];

async fn covers_are_proxied_once_with_the_douban_referer(db: TestDatabase) {
    let app = spawn_app(db).await;
    let cover = format!("{}/view/subject/l/public/s2768378.jpg", app.books.uri());
    douban_hit(&app.books, SANTI, "三体", "刘慈欣", Some(cover)).await;
    Mock::given(path("/view/subject/l/public/s2768378.jpg"))
        .and(header("referer", "https://book.douban.com/"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JPEG, "image/jpeg"))
        .expect(1)
        .mount(&app.books)
        .await;
    let t = user(&app).await;
    app.get(&format!("/api/books/{SANTI}/cover/"), None)
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(&format!("/api/books/{SANTI}/"), Some(&t))
        .await
        .assert_ok();
    for _ in 0..2 {
        let response = app
            .client
            .get(app.url(&format!("/api/books/{SANTI}/cover/")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert!(response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age"));
        assert_eq!(response.bytes().await.unwrap().as_ref(), JPEG);
    }
}

async fn covers_only_come_from_allowed_hosts_and_must_be_images(db: TestDatabase) {
    let app = spawn_app_with(db, |c| {
        c.core.books.cover_hosts = vec!["covers.example.org".into()]
    })
    .await;
    let cover = format!("{}/cover.jpg", app.books.uri());
    douban_hit(&app.books, SANTI, "三体", "刘慈欣", Some(cover)).await;
    Mock::given(path("/cover.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JPEG, "image/jpeg"))
        .expect(0)
        .mount(&app.books)
        .await;
    let t = user(&app).await;
    app.get(&format!("/api/books/{SANTI}/"), Some(&t))
        .await
        .assert_ok();
    app.get(&format!("/api/books/{SANTI}/cover/"), None)
        .await
        .assert_error(404, "NOT_FOUND");

    // Allowed host, but not an image / too large / a redirect elsewhere.
    let open = spawn_app_with(
        TestDatabase::create(refbook_core::testing::TestBackend::Sqlite)
            .await
            .unwrap(),
        |c| {
            c.core.books.cover_max_bytes = 1024;
        },
    )
    .await;
    let t = user(&open).await;
    for (isbn, file) in [
        (SANTI, "/page.html"),
        (FOX, "/huge.jpg"),
        ("9787020002207", "/elsewhere.jpg"),
    ] {
        douban_hit(
            &open.books,
            isbn,
            "书",
            "作者",
            Some(format!("{}{file}", open.books.uri())),
        )
        .await;
        open.get(&format!("/api/books/{isbn}/"), Some(&t))
            .await
            .assert_ok();
    }
    Mock::given(path("/page.html"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html></html>", "text/html"))
        .mount(&open.books)
        .await;
    Mock::given(path("/huge.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![0u8; 4096], "image/jpeg"))
        .mount(&open.books)
        .await;
    Mock::given(path("/elsewhere.jpg"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", "http://metadata.internal.example/secret"),
        )
        .mount(&open.books)
        .await;
    for isbn in [SANTI, FOX, "9787020002207"] {
        open.get(&format!("/api/books/{isbn}/cover/"), None)
            .await
            .assert_error(404, "NOT_FOUND");
    }
    open.get("/api/books/not-an-isbn/cover/", None)
        .await
        .assert_error(400, "INVALID_PARAMS");
}

const SCRIPT_PAGE: &str = "<html><body><script>document.title = 'pwned'</script></body></html>";
const SCRIPT_SVG: &str =
    "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>document.title = 'pwned'</script></svg>";

/// The hostile covers of an allowed host: a list of types with HTML behind it, SVG inside
/// a list, HTML under a plain image type; and one honest PNG. `(isbn, path)` each.
pub async fn hostile_covers(app: &TestApp) -> [(&'static str, &'static str); 4] {
    let covers = [
        (SANTI, "/list.png"),
        (FOX, "/svg-in-list.gif"),
        ("9787020002207", "/html-as.png"),
        ("9787544253994", "/honest.png"),
    ];
    let t = user(app).await;
    for (isbn, file) in covers {
        douban_hit(
            &app.books,
            isbn,
            "书",
            "作者",
            Some(format!("{}{file}", app.books.uri())),
        )
        .await;
        app.get(&format!("/api/books/{isbn}/"), Some(&t))
            .await
            .assert_ok();
    }
    let serve = |body: Vec<u8>, content_type: &'static str| {
        ResponseTemplate::new(200)
            .insert_header("content-type", content_type)
            .set_body_bytes(body)
    };
    for (file, response) in [
        (
            "/list.png",
            serve(SCRIPT_PAGE.into(), "image/png,text/html"),
        ),
        (
            "/svg-in-list.gif",
            serve(SCRIPT_SVG.into(), "image/gif, image/svg+xml"),
        ),
        ("/html-as.png", serve(SCRIPT_PAGE.into(), "image/png")),
        ("/honest.png", serve(tiny_png(), "image/png")),
    ] {
        Mock::given(path(file))
            .respond_with(response)
            .mount(&app.books)
            .await;
    }
    covers
}

async fn a_cover_is_one_image_type_its_bytes_confirm(db: TestDatabase) {
    let app = spawn_app(db).await;
    let covers = hostile_covers(&app).await;
    for (isbn, _) in &covers[..3] {
        let response = app
            .client
            .get(app.url(&format!("/api/books/{isbn}/cover/")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{isbn}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let response = app
        .client
        .get(app.url(&format!("/api/books/{}/cover/", covers[3].0)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), tiny_png());
}

async fn open_library_keys_never_steer_a_request(db: TestDatabase) {
    let app = spawn_app(db).await;
    // The canary is another server on this machine: nothing may reach it.
    let canary = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "Mallory"})))
        .mount(&canary)
        .await;
    let canary_authority = canary.address().to_string();
    douban_miss(&app.books).await;
    google_miss(&app.books).await;
    Mock::given(path(format!("/isbn/{FOX}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "title": "Fantastic Mr. Fox",
            "authors": [
                {"key": format!("@{canary_authority}/x")},
                {"key": ".evil.example/x"},
                {"key": "/authors/OL1A/../../../x"},
                {"key": "/authors/OL34184A"}
            ],
            "works": [{"key": format!("@{canary_authority}/w")}]
        })))
        .mount(&app.books)
        .await;
    Mock::given(path("/authors/OL34184A.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "Roald Dahl"})))
        .mount(&app.books)
        .await;
    // An upstream's redirect to another host is not followed either.
    Mock::given(path(format!("/isbn/{SANTI}.json")))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("http://{canary_authority}/books/OL1M.json"),
        ))
        .mount(&app.books)
        .await;
    let t = user(&app).await;
    let reply = app.get(&format!("/api/books/{FOX}/"), Some(&t)).await;
    let book = reply.assert_ok();
    assert_eq!(
        book["author"], "Roald Dahl",
        "only the documented key was followed"
    );
    let reply = app.get(&format!("/api/books/{SANTI}/"), Some(&t)).await;
    assert_ne!(reply.status, 200);
    assert!(
        canary
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "the canary saw a request"
    );
}

async fn an_allowed_host_without_a_port_allows_only_the_default_port(db: TestDatabase) {
    // The operator allows the mock's host by name, without its (random) port.
    let app = spawn_app_with(db, |c| c.core.books.cover_hosts = vec!["127.0.0.1".into()]).await;
    let t = user(&app).await;
    // Another service on that host, on another port: never fetched, directly or by redirect.
    let internal = MockServer::start().await;
    Mock::given(path("/secret.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JPEG, "image/jpeg"))
        .expect(0)
        .mount(&internal)
        .await;
    douban_hit(
        &app.books,
        SANTI,
        "三体",
        "刘慈欣",
        Some(format!("{}/secret.jpg", internal.uri())),
    )
    .await;
    app.get(&format!("/api/books/{SANTI}/"), Some(&t))
        .await
        .assert_ok();
    app.get(&format!("/api/books/{SANTI}/cover/"), None)
        .await
        .assert_error(404, "NOT_FOUND");
}

async fn a_failing_cover_is_fetched_once_however_often_asked(db: TestDatabase) {
    let app = spawn_app(db).await;
    let t = user(&app).await;
    let cover = format!("{}/down.jpg", app.books.uri());
    douban_hit(&app.books, SANTI, "三体", "刘慈欣", Some(cover)).await;
    app.get(&format!("/api/books/{SANTI}/"), Some(&t))
        .await
        .assert_ok();
    Mock::given(path("/down.jpg"))
        .respond_with(ResponseTemplate::new(503).set_delay(std::time::Duration::from_millis(200)))
        .expect(1)
        .mount(&app.books)
        .await;
    // 20 at once share one fetch; 80 more after it are answered from memory.
    let cover_path = format!("/api/books/{SANTI}/cover/");
    let together: Vec<_> = (0..20).map(|_| app.get(&cover_path, None)).collect();
    for reply in futures::future::join_all(together).await {
        reply.assert_error(503, "UPSTREAM_UNAVAILABLE");
    }
    for _ in 0..80 {
        app.get(&format!("/api/books/{SANTI}/cover/"), None)
            .await
            .assert_error(503, "UPSTREAM_UNAVAILABLE");
    }
    app.books.verify().await;
}

backend_tests!(
    an_allowed_host_without_a_port_allows_only_the_default_port,
    a_failing_cover_is_fetched_once_however_often_asked,
    a_book_is_found_by_any_isbn_form_and_cached,
    bad_isbns_are_400,
    sources_are_asked_in_order,
    unknown_everywhere_is_404_and_all_failing_is_503,
    slow_sources_time_out,
    search_pages_through_stored_books,
    covers_are_proxied_once_with_the_douban_referer,
    covers_only_come_from_allowed_hosts_and_must_be_images,
    a_cover_is_one_image_type_its_bytes_confirm,
    open_library_keys_never_steer_a_request,
);
