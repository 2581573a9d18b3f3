//! The `refbook-http` binary as operators run it: configuration from the environment,
//! JSON logs with request ids and no secrets, SIGTERM for a clean stop.

use std::time::Duration;

use refbook_core::backend_tests;
use refbook_core::testing::TestDatabase;
use serde_json::{json, Value};
use tokio::process::Command;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "binary-test-password-42";
const SESSION_KEY: &str = "SeSsIoNkEy/LeakCheck==";
const WECHAT_SECRET: &str = "wechat-secret-leak-check";
const LLM_KEY: &str = "sk-llm-key-leak-check";

async fn start(db: &TestDatabase, wechat: &MockServer) -> crate::helpers::Binary {
    let wechat_url = wechat.uri();
    crate::helpers::start_binary(
        &[
            ("REFBOOK_DATABASE_URL", db.url()),
            ("REFBOOK_LOG", "debug"),
            ("REFBOOK_WECHAT_APPID", "wx-binary"),
            ("REFBOOK_WECHAT_SECRET", WECHAT_SECRET),
            ("REFBOOK_WECHAT_BASE_URL", &wechat_url),
            ("REFBOOK_LLM_API_KEY", LLM_KEY),
        ],
        None,
    )
    .await
}

async fn the_binary_serves_logs_safely_and_stops_on_sigterm(db: TestDatabase) {
    let wechat = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            json!({"session_key": SESSION_KEY, "openid": "o-bin"}).to_string(),
            "text/plain",
        ))
        .mount(&wechat)
        .await;
    let mut server = start(&db, &wechat).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.url))
            .json(&body)
            .send()
    };

    let reg: Value = post(
        "/api/auth/register/",
        json!({"username": "binuser", "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = reg["token"].as_str().unwrap().to_owned();
    let refresh = reg["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post(
            "/api/auth/login/",
            json!({"username": "binuser", "password": "wrong-password-x"})
        )
        .await
        .unwrap()
        .status(),
        401
    );
    assert_eq!(
        post("/api/auth/refresh/", json!({"refresh_token": refresh}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/api/auth/login/wechat/", json!({"code": "wx-code"}))
            .await
            .unwrap()
            .status(),
        200
    );
    let me = client
        .get(format!("{}/api/auth/me/", server.url))
        .bearer_auth(&access)
        .header("x-request-id", "binary-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // A connection that never sends a byte must not hold up the stop.
    let _silent = tokio::net::TcpStream::connect(server.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let pid = server.child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .expect("stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let reader = std::mem::replace(&mut server.reader, tokio::spawn(async {}));
    tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the log reader finished")
        .unwrap();

    let log = server.log.lock().unwrap().join("\n");
    for secret in [
        PASSWORD,
        "wrong-password-x",
        &access,
        &refresh,
        SESSION_KEY,
        WECHAT_SECRET,
        LLM_KEY,
    ] {
        assert!(
            !log.contains(secret),
            "secret leaked into the log: {secret}\n{log}"
        );
    }
    let access_line = log
        .lines()
        .find(|l| l.contains("binary-req-1") && l.contains("\"status\":200"))
        .unwrap_or_else(|| panic!("an access log line with the request id:\n{log}"));
    let parsed: Value = serde_json::from_str(access_line).unwrap();
    assert_eq!(parsed["span"]["route"], "/api/auth/me");
    assert_eq!(parsed["span"]["method"], "GET");
    assert!(parsed["latency_ms"].as_f64().is_some());
    assert!(log.contains("stopped"));
}

async fn a_bad_setting_is_a_clear_error(db: TestDatabase) {
    let output = Command::new(env!("CARGO_BIN_EXE_refbook-http"))
        .env_clear()
        .env("REFBOOK_DATABASE_URL", db.url())
        .env("REFBOOK_ACCESS_TTL_SECS", "two hours")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("REFBOOK_ACCESS_TTL_SECS"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

backend_tests!(
    the_binary_serves_logs_safely_and_stops_on_sigterm,
    a_bad_setting_is_a_clear_error,
);
