//! `/api/auth/login/wechat/` against a stand-in that answers like WeChat: errors with HTTP
//! 200 and `text/plain`, a single-use code, `-1` busy, and a `session_key` never to leak.

use refbook_core::backend_tests;
use refbook_core::testing::TestDatabase;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_app, spawn_app_with, token};

const SESSION_KEY: &str = "eafmjK9FYzCVpqPSo/FBsQ==";

/// WeChat's plain-text JSON answer.
fn plain(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_string(), "text/plain")
}

async fn first_login_creates_the_user_and_later_ones_find_it(db: TestDatabase) {
    let app = spawn_app(db).await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .and(query_param("appid", "wx-test-app"))
        .and(query_param("secret", "wechat-app-secret-value"))
        .and(query_param("grant_type", "authorization_code"))
        .and(query_param("js_code", "code-1"))
        .respond_with(plain(
            json!({"session_key": SESSION_KEY, "openid": "o-reader-1"}),
        ))
        .expect(1)
        .mount(&app.wechat)
        .await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .and(query_param("js_code", "code-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"session_key": SESSION_KEY, "openid": "o-reader-1", "unionid": "u-1"}),
        ))
        .expect(1)
        .mount(&app.wechat)
        .await;

    let first = app
        .post("/api/auth/login/wechat/", None, json!({"code": "code-1"}))
        .await;
    let body = first.assert_ok().clone();
    assert!(body["user"]["username"].is_null());
    assert_eq!(body["user"]["nickname"], "微信用户");
    assert!(!first.text.contains(SESSION_KEY) && !first.text.contains("o-reader-1"));
    app.get("/api/auth/me/", Some(token(&body)))
        .await
        .assert_ok();

    let second = app
        .post("/api/auth/login/wechat", None, json!({"code": "code-2"}))
        .await;
    assert_eq!(second.assert_ok()["user"]["id"], body["user"]["id"]);

    // A WeChat-only user deletes the account with `{}`.
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            "/api/user/",
            Some(token(&body)),
            Some(json!({})),
        )
        .await;
    deleted.assert_ok();
}

async fn wechat_errors_map_to_the_contract(db: TestDatabase) {
    let app = spawn_app(db).await;
    let cases = [
        (
            "bad",
            json!({"errcode": 40029, "errmsg": "invalid code, rid: 1"}),
            401,
            "UNAUTHORIZED",
        ),
        (
            "used",
            json!({"errcode": 40163, "errmsg": "code been used, rid: 2"}),
            401,
            "UNAUTHORIZED",
        ),
        (
            "risky",
            json!({"errcode": 40226, "errmsg": "high risk user"}),
            401,
            "UNAUTHORIZED",
        ),
        (
            "hot",
            json!({"errcode": 45011, "errmsg": "api minute-quota reach limit"}),
            429,
            "RATE_LIMIT",
        ),
        (
            "secret",
            json!({"errcode": 40125, "errmsg": "invalid appsecret"}),
            503,
            "UPSTREAM_UNAVAILABLE",
        ),
        (
            "weird",
            json!({"errcode": 99999, "errmsg": "?"}),
            503,
            "UPSTREAM_UNAVAILABLE",
        ),
    ];
    for (code, answer, status, contract_code) in cases {
        Mock::given(path("/sns/jscode2session"))
            .and(query_param("js_code", code))
            .respond_with(plain(answer))
            .mount(&app.wechat)
            .await;
        let reply = app
            .post("/api/auth/login/wechat/", None, json!({"code": code}))
            .await;
        reply.assert_error(status, contract_code);
        assert!(
            !reply.text.contains("errmsg") && !reply.text.contains("appsecret"),
            "{}",
            reply.text
        );
        if status == 429 {
            assert!(reply.header("retry-after").is_some());
        }
    }
    app.post("/api/auth/login/wechat/", None, json!({}))
        .await
        .assert_error(400, "INVALID_PARAMS");
    app.post("/api/auth/login/wechat/", None, json!({"code": ""}))
        .await
        .assert_error(400, "INVALID_PARAMS");
}

async fn busy_is_retried_once(db: TestDatabase) {
    let app = spawn_app(db).await;
    // -1 then success: the retry logs the user in.
    Mock::given(path("/sns/jscode2session"))
        .and(query_param("js_code", "flaky"))
        .respond_with(plain(json!({"errcode": -1, "errmsg": "system error"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&app.wechat)
        .await;
    Mock::given(path("/sns/jscode2session"))
        .and(query_param("js_code", "flaky"))
        .respond_with(plain(
            json!({"session_key": SESSION_KEY, "openid": "o-flaky"}),
        ))
        .expect(1)
        .mount(&app.wechat)
        .await;
    app.post("/api/auth/login/wechat/", None, json!({"code": "flaky"}))
        .await
        .assert_ok();

    // -1 every time: 503 after exactly two calls.
    Mock::given(path("/sns/jscode2session"))
        .and(query_param("js_code", "down"))
        .respond_with(plain(json!({"errcode": -1, "errmsg": "system error"})))
        .expect(2)
        .mount(&app.wechat)
        .await;
    app.post("/api/auth/login/wechat/", None, json!({"code": "down"}))
        .await
        .assert_error(503, "UPSTREAM_UNAVAILABLE");
}

async fn wechat_down_or_unconfigured_is_503(db: TestDatabase) {
    let app = spawn_app(db).await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .mount(&app.wechat)
        .await;
    let reply = app
        .post("/api/auth/login/wechat/", None, json!({"code": "any"}))
        .await;
    reply.assert_error(503, "UPSTREAM_UNAVAILABLE");
    assert!(!reply.text.contains("html"));

    let unconfigured = spawn_app_with(
        TestDatabase::create(refbook_core::testing::TestBackend::Sqlite)
            .await
            .unwrap(),
        |c| {
            c.core.wechat.appid = None;
        },
    )
    .await;
    unconfigured
        .post("/api/auth/login/wechat/", None, json!({"code": "any"}))
        .await
        .assert_error(503, "UPSTREAM_UNAVAILABLE");
    assert!(unconfigured
        .wechat
        .received_requests()
        .await
        .unwrap()
        .is_empty());
}

backend_tests!(
    first_login_creates_the_user_and_later_ones_find_it,
    wechat_errors_map_to_the_contract,
    busy_is_retried_once,
    wechat_down_or_unconfigured_is_503,
);
