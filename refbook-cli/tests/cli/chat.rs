//! `refbook-cli chat`, `history` and `show`: piped and in a real terminal (a pty).

use std::process::Stdio;
use std::time::Duration;

use refbook_core::backend_tests;
use refbook_core::testing::{MockLlm, MockReply, TestDatabase};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::run::{assert_clean_failure, cli, temp_file, Output};

async fn books() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/v2/book/isbn/9787536692930"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"title": "三体", "author": ["刘慈欣"]})),
        )
        .mount(&server)
        .await;
    server
}

async fn chat(
    db: &TestDatabase,
    books: &MockServer,
    llm: &MockLlm,
    args: &[&str],
    stdin: &str,
) -> Output {
    let url = llm.url();
    cli(
        db.url(),
        books,
        args,
        stdin,
        &[
            ("REFBOOK_LLM_BASE_URL", url.as_str()),
            ("REFBOOK_LLM_API_KEY", "sk-test"),
        ],
    )
    .await
}

async fn piped_chat_answers_each_line_and_is_kept(db: TestDatabase) {
    let (books, llm) = (books().await, MockLlm::start().await);
    llm.push(MockReply::answer(
        &["想想"],
        &["作者是", "刘慈欣。"],
        Duration::from_millis(20),
    ));
    llm.push(MockReply::answer(
        &[],
        &["还有《球状闪电》。"],
        Duration::ZERO,
    ));
    let out = chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "978-7-5366-9293-0"],
        "作者是谁？\n\n还写过什么？\n",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout, "作者是刘慈欣。\n还有《球状闪电》。\n",
        "plain answers only"
    );
    assert!(!out.stdout.contains('\x1b'), "no colour when piped");
    assert_eq!(llm.requests().len(), 2, "the empty line was skipped");

    let history = chat(&db, &books, &llm, &["history"], "").await;
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(
        history.stdout.contains("《三体》") && history.stdout.contains("4 messages"),
        "{}",
        history.stdout
    );
    let id: i64 = history
        .stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let shown = chat(&db, &books, &llm, &["show", &id.to_string()], "").await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    for expected in ["作者是谁？", "作者是刘慈欣。", "想想", "还写过什么？"] {
        assert!(
            shown.stdout.contains(expected),
            "{expected}: {}",
            shown.stdout
        );
    }

    // Continuing the conversation sends its history to the model.
    let again = chat(
        &db,
        &books,
        &llm,
        &["chat", "--conversation", &id.to_string()],
        "第三个问题\n",
    )
    .await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let sent = llm.requests()[2]["messages"].as_array().unwrap().clone();
    assert_eq!(sent.len(), 6, "system + two turns + question: {sent:?}");
    assert_eq!(sent[1]["content"], "作者是谁？");

    let missing = chat(&db, &books, &llm, &["show", "99999"], "").await;
    assert_clean_failure(&missing, "not found");
}

async fn chat_errors_are_one_clear_line(db: TestDatabase) {
    let (books, llm) = (books().await, MockLlm::start().await);
    // No key and no local model file, offline: the default local model cannot be fetched.
    let offline = cli(
        db.url(),
        &books,
        &["chat", "--isbn", "9787536692930"],
        "你好\n",
        &[],
    )
    .await;
    assert_clean_failure(&offline, "set REFBOOK_LOCAL_MODEL to its path");
    // The model switched off: the hint names both ways to get one.
    let unconfigured = cli(
        db.url(),
        &books,
        &["chat", "--isbn", "9787536692930"],
        "你好\n",
        &[("REFBOOK_LLM_PROVIDER", "off")],
    )
    .await;
    assert_clean_failure(&unconfigured, "REFBOOK_LLM_API_KEY");

    llm.push(MockReply::error(500));
    let failing = chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "9787536692930"],
        "你好\n",
    )
    .await;
    assert_clean_failure(&failing, "unavailable");
    assert!(
        !failing.stderr.contains("WARN") && !failing.stderr.contains("refbook_core"),
        "no log lines in the chat, only the CLI's own error: {}",
        failing.stderr
    );
    assert!(
        !failing.stderr.contains("REFBOOK_LLM_API_KEY"),
        "a failing model server is not a missing key: {}",
        failing.stderr
    );

    let bad_isbn = chat(&db, &books, &llm, &["chat", "--isbn", "12345"], "你好\n").await;
    assert_clean_failure(&bad_isbn, "isbn");
    let bad_persona = chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "9787536692930", "--persona", "pirate"],
        "",
    )
    .await;
    assert_clean_failure(&bad_persona, "persona");
    let no_isbn = chat(&db, &books, &llm, &["chat"], "").await;
    assert_ne!(no_isbn.code, 0);
}

/// Runs the CLI under `script`, which gives it a real pseudo-terminal; writes each input
/// and waits until what the program printed since shows its `after` text (`""`: until
/// the program ends). Inputs are sent only after the previous step's output appeared, so
/// keys reach the line editor, not a terminal between modes.
async fn in_terminal(
    db: &TestDatabase,
    books: &MockServer,
    llm: &MockLlm,
    args: &str,
    steps: &[(&str, &str)],
) -> String {
    // `exec`: no shell between `script` and the CLI to catch Ctrl-C as well.
    let command = format!("exec {} {args}", env!("CARGO_BIN_EXE_refbook-cli"));
    let mut child = tokio::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("TERM", "xterm")
        .env("LANG", "en_US.UTF-8")
        .env("REFBOOK_DATABASE_URL", db.url())
        .env("REFBOOK_DOUBAN_BASE_URL", books.uri())
        .env("REFBOOK_BOOK_SOURCES", "douban")
        .env("REFBOOK_LLM_BASE_URL", llm.url())
        .env("REFBOOK_LLM_API_KEY", "sk-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Raw bytes: a read may end inside a UTF-8 character.
    let mut seen: Vec<u8> = Vec::new();
    let mut cursor = 0;
    let mut buf = [0u8; 4096];
    let find =
        |hay: &[u8], needle: &[u8]| hay.windows(needle.len().max(1)).position(|w| w == needle);
    for (input, after) in steps {
        stdin.write_all(input.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        let needle = after.as_bytes();
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if !needle.is_empty() {
                    if let Some(at) = find(&seen[cursor..], needle) {
                        return Some(cursor + at + needle.len());
                    }
                }
                let n = stdout.read(&mut buf).await.unwrap();
                if n == 0 {
                    return needle.is_empty().then_some(seen.len());
                }
                seen.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        let screen = String::from_utf8_lossy(&seen);
        match found {
            Ok(Some(next)) => cursor = next,
            _ => panic!("waited for {after:?} after byte {cursor}; screen:\n{screen}"),
        }
    }
    let screen = String::from_utf8_lossy(&seen).into_owned();
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    assert!(
        matches!(&status, Ok(Ok(s)) if s.success()),
        "exits cleanly ({status:?}):\n{screen}"
    );
    screen
}

async fn a_terminal_session_streams_the_answer(db: TestDatabase) {
    let (books, llm) = (books().await, MockLlm::start().await);
    llm.push(MockReply::answer(
        &["让我想想"],
        &["《三体》", "的作者", "是刘慈欣。"],
        Duration::from_millis(150),
    ));
    let screen = in_terminal(
        &db,
        &books,
        &llm,
        "chat --isbn 9787536692930",
        &[
            ("", "你> "),
            ("作者是谁？\r", "是刘慈欣。"),
            ("", "你> "),
            ("/book\r", "ISBN-13 9787536692930"),
            ("", "你> "),
            ("/quit\r", ""),
        ],
    )
    .await;
    assert!(
        screen.contains("《三体》") && screen.contains("刘慈欣"),
        "the header"
    );
    assert!(
        screen.contains("\x1b[2m"),
        "reasoning is dimmed on a terminal:\n{screen}"
    );
    assert!(screen.contains("让我想想"));
    assert!(screen.contains("《三体》的作者是刘慈欣。"));
}

async fn ctrl_c_stops_the_answer_and_keeps_the_part(db: TestDatabase) {
    let (books, llm) = (books().await, MockLlm::start().await);
    let pieces: Vec<String> = (0..40).map(|i| format!("第{i}段")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    llm.push(MockReply::answer(&[], &refs, Duration::from_millis(100)));
    let screen = in_terminal(
        &db,
        &books,
        &llm,
        "chat --isbn 9787536692930",
        &[
            ("", "你> "),
            ("讲个长故事\r", "第2段"),
            ("\u{3}", "已停止"),
            ("", "你> "),
            ("\u{4}", ""),
        ],
    )
    .await;
    assert!(!screen.contains("第39段"), "stopped early");
    let shown = chat(&db, &books, &llm, &["show", "1"], "").await;
    assert!(
        shown.stdout.contains("已停止") && shown.stdout.contains("第0段第1段第2段"),
        "{}",
        shown.stdout
    );
}

async fn piped_chat_answers_every_line_it_can(db: TestDatabase) {
    let (books, llm) = (books().await, MockLlm::start().await);
    llm.push(MockReply::error(500));
    let out = chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "9787536692930"],
        "第一个问题\n第二个问题\n",
    )
    .await;
    // The first fails, the second is still asked and answered, and the run fails at the end.
    assert!(out.stdout.contains("第二个问题"), "{}", out.stdout);
    assert_clean_failure(&out, "1 of 2 questions were not answered");
    assert!(out.stderr.contains("unavailable"), "{}", out.stderr);
}

async fn chat_reads_along_up_to_the_progress_given(db: TestDatabase) {
    let (books, llm) = (books().await, MockLlm::start().await);
    let novel = temp_file(
        "santi.txt",
        "第一章 科学边界\n汪淼是纳米材料研究者，他看见了倒计时。\n\n\
         第二章 红岸\n汪淼后来知道，叶文洁在红岸基地按下了发射键。\n",
    );
    let added = chat(
        &db,
        &books,
        &llm,
        &[
            "books",
            "text",
            "add",
            "--isbn",
            "9787536692930",
            novel.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    let listed = chat(
        &db,
        &books,
        &llm,
        &["books", "text", "sections", "--isbn", "9787536692930"],
        "",
    )
    .await;
    assert!(
        listed.stdout.starts_with("    0  第一章 科学边界"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("    1  第二章 红岸"),
        "{}",
        listed.stdout
    );
    llm.push(MockReply::answer(&[], &["他是研究者。"], Duration::ZERO));
    let out = chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "9787536692930", "--progress", "0"],
        "汪淼是谁？\n",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout, "他是研究者。\n",
        "the progress line goes to stderr"
    );
    assert!(
        out.stderr.contains("up to #0 第一章 科学边界"),
        "{}",
        out.stderr
    );
    let system = llm.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("纳米材料研究者"), "{system}");
    assert!(
        !system.contains("红岸基地"),
        "nothing past the progress: {system}"
    );
    assert!(system.contains("读到了「第一章 科学边界」"), "{system}");

    // Kept for the book; `off` clears it; a section past the end is refused.
    llm.push(MockReply::answer(&[], &["好。"], Duration::ZERO));
    chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "9787536692930"],
        "汪淼是谁？\n",
    )
    .await;
    assert!(!llm.requests()[1]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("红岸基地"));
    llm.push(MockReply::answer(&[], &["好。"], Duration::ZERO));
    let cleared = chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "9787536692930", "--progress", "off"],
        "汪淼是谁？\n",
    )
    .await;
    assert!(cleared.stderr.contains("not set"), "{}", cleared.stderr);
    assert!(llm.requests()[2]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("红岸基地"));
    let past = chat(
        &db,
        &books,
        &llm,
        &["chat", "--isbn", "9787536692930", "--progress", "9"],
        "汪淼是谁？\n",
    )
    .await;
    assert_clean_failure(&past, "sections");
}

async fn the_books_guide_is_built_and_printed(db: TestDatabase) {
    let (books, llm) = (books().await, MockLlm::start().await);
    let novel = temp_file(
        "santi-guide.txt",
        "第一章 科学边界\n汪淼是纳米材料研究者，他看见了倒计时，不知道它从何而来。\n\n\
         第二章 红岸\n汪淼后来知道，叶文洁在红岸基地按下了发射键，一切由此开始。\n",
    );
    let path = novel.to_str().unwrap();
    let add = ["books", "text", "add", "--isbn", "9787536692930", path];
    assert_eq!(chat(&db, &books, &llm, &add, "").await.code, 0);
    let guide_env = [
        ("REFBOOK_LLM_BASE_URL", llm.url()),
        ("REFBOOK_LLM_API_KEY", "sk-test".to_owned()),
        ("REFBOOK_GUIDE", "auto".to_owned()),
    ];
    let env: Vec<(&str, &str)> = guide_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = cli(
        db.url(),
        &books,
        &["book", "guide", "9787536692930"],
        "",
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("#0 第一章 科学边界"), "{}", out.stdout);
    assert!(out.stdout.contains("#1 第二章 红岸"), "{}", out.stdout);
    assert!(
        out.stdout.contains("(ready: 2/2 sections summarised)"),
        "{}",
        out.stdout
    );
    assert_eq!(llm.requests().len(), 3, "two sections and the book");
    let again = cli(
        db.url(),
        &books,
        &["book", "guide", "978-7-5366-9293-0", "--json"],
        "",
        &env,
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(json["status"], "ready");
    assert!(json["book"]["summary"].is_string());
    assert_eq!(
        llm.requests().len(),
        3,
        "a finished guide is not built again"
    );
    let off = chat(&db, &books, &llm, &["book", "guide", "9787536692930"], "").await;
    assert_clean_failure(&off, "guides are off");
    let none = cli(
        db.url(),
        &books,
        &["book", "guide", "9787020002207"],
        "",
        &env,
    )
    .await;
    assert_clean_failure(&none, "no text");
}

backend_tests!(
    the_books_guide_is_built_and_printed,
    chat_reads_along_up_to_the_progress_given,
    piped_chat_answers_every_line_it_can,
    ctrl_c_stops_the_answer_and_keeps_the_part,
    piped_chat_answers_each_line_and_is_kept,
    chat_errors_are_one_clear_line,
    a_terminal_session_streams_the_answer,
);
