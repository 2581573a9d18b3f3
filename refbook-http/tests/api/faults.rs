//! Durability under real faults, each on a server of the test's own so nothing beside it
//! is disturbed: PostgreSQL stopped mid-reply (its own cluster), a SQLite disk that fills
//! and frees (its own tmpfs), and a server process killed mid-reply then restarted.

use std::time::Duration;

use refbook_core::testing::{MockLlm, TestDatabase};
use serde_json::{json, Value};
use tokio::process::Child;

use crate::chat::{slow_answer, wait_until_generating};
use crate::helpers::{parse_sse, spawn_app_with, texts, token, TestApp, PASSWORD, SANTI};

async fn ready(app: &TestApp) -> u16 {
    app.get("/readyz", None).await.status.as_u16()
}

/// The last reply of the conversation once it is no longer generating.
async fn settled_reply(app: &TestApp, t: &str, id: i64, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let reply = app.get(&format!("/api/conversations/{id}/"), Some(t)).await;
        if reply.status == 200 {
            let last = reply.body["messages"]
                .as_array()
                .and_then(|m| m.last().cloned());
            if let Some(last) = last.filter(|m| m["status"] != "generating") {
                return last;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply never settled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_at_the_last_save_loses_nothing() {
    let Some(db) = TestDatabase::own_postgres_cluster() else {
        return;
    };
    let app = spawn_app_with(db, |c| {
        c.core.chat.reply_save_timeout_secs = 6;
        c.core.chat.reply_lease_secs = 3;
    })
    .await;
    let (t, id) = app.user_with_conversation("outage").await;

    // 1. The database goes away mid-reply and comes back within the save timeout: the
    //    final chunk waits for the save, then says `complete`; the row holds everything.
    let (script, full) = slow_answer(20);
    app.llm.push(script);
    let streaming = app.spawn_ask(&t, id, "问");
    wait_until_generating(&app, &t, id, 1).await;
    app.db.stop_server();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !streaming.is_finished(),
        "no [DONE] before the reply is stored"
    );
    app.db.start_server();
    let events = parse_sse(&streaming.await.unwrap());
    assert_eq!(texts(&events).0, full);
    let last = crate::helpers::last_chunk(&events);
    assert_eq!(last["status"], "complete");
    let stored = settled_reply(&app, &t, id, Duration::from_secs(20)).await;
    assert_eq!(stored["content"], full.as_str());
    assert_eq!(stored["status"], "complete");
    assert_eq!(ready(&app).await, 200);

    // 2. Away for longer than the save timeout: the client is told the reply could not be
    //    stored; once the database is back the reply is settled (never stuck generating).
    let (script, _) = slow_answer(10);
    app.llm.push(script);
    let streaming = app.spawn_ask(&t, id, "再问");
    wait_until_generating(&app, &t, id, 1).await;
    app.db.stop_server();
    assert_eq!(
        ready(&app).await,
        503,
        "not ready while the database is away"
    );
    let body = tokio::time::timeout(Duration::from_secs(60), streaming)
        .await
        .expect("the stream ends")
        .unwrap();
    let events = parse_sse(&body);
    let error = crate::helpers::error_event(&events);
    assert_eq!(error.expect("an error event")["code"], "SERVER_ERROR");
    app.db.start_server();
    let stored = settled_reply(&app, &t, id, Duration::from_secs(30)).await;
    assert_eq!(stored["status"], "partial");
    assert_eq!(stored["finish_reason"], "interrupted");
    assert_eq!(ready(&app).await, 200);
    // And the conversation takes questions again.
    let again = app.ask_streaming(&t, id, "好了吗").await;
    assert_eq!(again.status, 200, "{}", again.text);
}

/// Fills the file system holding `dir` until a write fails; returns the filler's path.
fn fill_disk(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 16 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.flush();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_disk_recovers_by_itself_and_acknowledged_writes_stay() {
    let Some(db) = TestDatabase::sqlite_on_small_disk(4096) else {
        return;
    };
    let dir = db.sqlite_dir().expect("a folder").to_owned();
    let app = spawn_app_with(db, |_| {}).await;
    app.register("before").await;
    assert_eq!(ready(&app).await, 200);
    let filler = fill_disk(&dir);
    // Writes fail while the disk is full, and readiness says so.
    let mut failed = 0;
    for i in 0..6 {
        let reply = app
            .post(
                "/api/auth/register/",
                None,
                json!({"username": format!("full{i}"), "password": PASSWORD}),
            )
            .await;
        if reply.status != 200 {
            reply.assert_error(500, "SERVER_ERROR");
            failed += 1;
        }
    }
    assert!(failed > 0, "the disk was not full");
    assert_eq!(ready(&app).await, 503);
    std::fs::remove_file(filler).unwrap();
    // Freed: every write works again at once, without a restart.
    assert_eq!(ready(&app).await, 200);
    let mut acknowledged = Vec::new();
    for i in 0..12 {
        let name = format!("after{i}");
        let reply = app
            .post(
                "/api/auth/register/",
                None,
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        acknowledged.push(name);
    }
    // Every acknowledged write reached the file: a new process finds them all.
    let TestApp { server, .. } = app;
    let restarted_config = {
        let mut c = crate::helpers::test_config_for_url(&dir.join("refbook.db"));
        c.http.login_rate_per_min = 10_000;
        c
    };
    server.stop().await.unwrap();
    let again = crate::helpers::start_server(restarted_config).await;
    let client = reqwest::Client::new();
    for name in acknowledged
        .iter()
        .chain(std::iter::once(&"before".to_owned()))
    {
        let login = client
            .post(format!("{}/api/auth/login/", again.url()))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "{name} was acknowledged but is gone");
    }
    again.stop().await.unwrap();
}

/// The server binary on `db_url`, with the mock model at `llm`.
async fn start_binary(db_url: &str, llm: &str) -> (Child, String) {
    let running = crate::helpers::start_binary(
        &[
            ("REFBOOK_DATABASE_URL", db_url),
            ("REFBOOK_LOG", "info"),
            ("REFBOOK_LLM_BASE_URL", llm),
            ("REFBOOK_LLM_API_KEY", "sk-kill-test"),
            ("REFBOOK_REPLY_LEASE_SECS", "3"),
            ("REFBOOK_BOOK_SOURCES", "openlibrary"),
            ("REFBOOK_OPENLIBRARY_BASE_URL", "http://127.0.0.1:9"),
        ],
        None,
    )
    .await;
    (running.child, running.url)
}

/// Sends `request` and reads its JSON answer.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

async fn a_killed_process_leaves_no_reply_generating(db: TestDatabase) {
    let llm = MockLlm::start().await;
    let (script, _) = slow_answer(200);
    llm.push(script);
    let (mut first, url) = start_binary(db.url(), &llm.url()).await;
    let client = reqwest::Client::new();
    let login = json_of(
        client
            .post(format!("{url}/api/auth/register/"))
            .json(&json!({"username": "killed", "password": PASSWORD})),
    )
    .await;
    let t = token(&login).to_owned();
    // The book comes from the local catalogue (no network).
    let store = refbook_core::store::SqlStore::connect(db.url())
        .await
        .unwrap();
    let book = refbook_core::books::BookFields {
        title: "三体".into(),
        ..Default::default()
    }
    .into_book(
        &refbook_core::books::Isbn::parse(SANTI).unwrap(),
        "catalog",
        refbook_core::timestamp::Timestamp::now(),
    );
    refbook_core::store::BookStore::upsert_book(
        &store,
        &book,
        refbook_core::timestamp::Timestamp::now(),
    )
    .await
    .unwrap();
    let conversation = json_of(
        client
            .post(format!("{url}/api/conversations/"))
            .bearer_auth(&t)
            .json(&json!({"isbn": SANTI})),
    )
    .await;
    let id = conversation["id"].as_i64().unwrap();
    let asking = client
        .post(format!("{url}/api/conversations/{id}/messages/"))
        .bearer_auth(&t)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "问"}))
        .send();
    let asking = tokio::spawn(asking);
    // Mid-reply (past a checkpoint), SIGKILL.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let _ = asking.await;
    let (_second, url) = start_binary(db.url(), &llm.url()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let shown = json_of(
            client
                .get(format!("{url}/api/conversations/{id}/"))
                .bearer_auth(&t),
        )
        .await;
        let reply = &shown["messages"][1];
        if reply["status"] != "generating" {
            assert_eq!(reply["status"], "partial");
            assert_eq!(reply["finish_reason"], "interrupted");
            assert!(
                !reply["content"].as_str().unwrap().is_empty(),
                "the checkpoint is kept"
            );
            // And it can be resumed: the stream replays it with its ending.
            let replay = client
                .get(format!("{url}/api/conversations/{id}/stream/"))
                .bearer_auth(&t)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                replay.contains("\"finish_reason\":\"interrupted\""),
                "{replay}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still generating: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

refbook_core::backend_tests!(a_killed_process_leaves_no_reply_generating);
