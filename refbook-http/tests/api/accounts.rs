//! `/api/auth/…`: register, login, OAuth2 token, refresh rotation and reuse, logout, me.

use refbook_core::backend_tests;
use refbook_core::testing::TestDatabase;
use serde_json::{json, Value};

use crate::helpers::{refresh, spawn_app, spawn_app_with, token, PASSWORD};

async fn register_returns_the_login_payload(db: TestDatabase) {
    let app = spawn_app(db).await;
    let reply = app
        .post(
            "/api/auth/register/",
            None,
            json!({"username": "阿书_reader", "password": PASSWORD, "email": "Reader@Example.com", "nickname": "阿书"}),
        )
        .await;
    let body = reply.assert_ok();
    assert!(
        body["token"].as_str().unwrap().split('.').count() == 3,
        "a JWT"
    );
    assert!(body["refresh_token"].as_str().unwrap().len() >= 32);
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["refresh_expires_in"], 604_800);
    let user = &body["user"];
    assert!(user["id"].as_i64().unwrap() > 0);
    assert_eq!(user["username"], "阿书_reader");
    assert_eq!(user["nickname"], "阿书");
    assert_eq!(user["email"], "Reader@Example.com");
    assert!(user["avatar_url"].is_null());
    let created = user["created_at"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert!(user.get("password_hash").is_none() && !reply.text.contains("argon2"));
    // Nickname defaults to the username.
    let other = app.register("plain_name").await;
    assert_eq!(other["user"]["nickname"], "plain_name");
}

async fn registration_validates_every_field(db: TestDatabase) {
    let app = spawn_app(db).await;
    let cases = [
        (json!({"username": "ab", "password": PASSWORD}), "username"),
        (
            json!({"username": "x".repeat(33), "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "has space", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "at@sign", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "okname", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "okname", "password": "p".repeat(129)}),
            "password",
        ),
        (
            json!({"username": "okname", "password": PASSWORD, "email": "not-an-email"}),
            "email",
        ),
        (
            json!({"username": "okname", "password": PASSWORD, "nickname": "\u{7}"}),
            "nickname",
        ),
        (json!({"username": 5, "password": PASSWORD}), "username"),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/auth/register/", None, body.clone()).await;
        reply.assert_error(400, "INVALID_PARAMS");
        assert_eq!(reply.body["details"]["field"], field, "{body}");
    }
    // Nothing was stored by the failures.
    app.login("okname", PASSWORD)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn taken_usernames_and_emails_conflict(db: TestDatabase) {
    let app = spawn_app(db).await;
    app.register("alice").await;
    let same_name = app
        .post(
            "/api/auth/register/",
            None,
            json!({"username": "ALICE", "password": PASSWORD}),
        )
        .await;
    same_name.assert_error(409, "CONFLICT");
    let same_email = app
        .post(
            "/api/auth/register/",
            None,
            json!({"username": "alice2", "password": PASSWORD, "email": "ALICE@example.com"}),
        )
        .await;
    same_email.assert_error(409, "CONFLICT");
    assert_eq!(same_email.body["details"]["field"], "email");
}

async fn login_by_username_or_email_with_one_generic_failure(db: TestDatabase) {
    let app = spawn_app(db).await;
    let registered = app.register("bob").await;
    let by_name = app.login("Bob", PASSWORD).await;
    assert_eq!(by_name.assert_ok()["user"]["id"], registered["user"]["id"]);
    let by_email = app.login("BOB@example.com", PASSWORD).await;
    assert_eq!(by_email.assert_ok()["user"]["id"], registered["user"]["id"]);

    let wrong_password = app.login("bob", "wrong password!").await;
    let unknown_user = app.login("nobody", PASSWORD).await;
    let unknown_email = app.login("nobody@example.com", PASSWORD).await;
    let garbage = app.login("不 合 法", PASSWORD).await;
    for reply in [&wrong_password, &unknown_user, &unknown_email, &garbage] {
        reply.assert_error(401, "UNAUTHORIZED");
        assert_eq!(reply.body, wrong_password.body, "one generic message");
    }
}

async fn oauth2_password_grant(db: TestDatabase) {
    let app = spawn_app(db).await;
    app.register("carol").await;
    let form = app
        .send(app.client.post(app.url("/api/auth/token/")).form(&[
            ("grant_type", "password"),
            ("username", "carol"),
            ("password", PASSWORD),
        ]))
        .await;
    let body = form.assert_ok();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 7200);
    let access = body["access_token"].as_str().unwrap();
    assert!(body["refresh_token"].as_str().is_some());
    app.get("/api/auth/me/", Some(access)).await.assert_ok();

    let wrong = app
        .send(
            app.client
                .post(app.url("/api/auth/token/"))
                .form(&[("username", "carol"), ("password", "nope-nope")]),
        )
        .await;
    wrong.assert_error(401, "UNAUTHORIZED");
    let grant = app
        .send(app.client.post(app.url("/api/auth/token/")).form(&[
            ("grant_type", "client_credentials"),
            ("username", "carol"),
            ("password", PASSWORD),
        ]))
        .await;
    grant.assert_error(400, "INVALID_PARAMS");
    let missing = app
        .send(
            app.client
                .post(app.url("/api/auth/token/"))
                .form(&[("username", "carol")]),
        )
        .await;
    missing.assert_error(400, "INVALID_PARAMS");
}

async fn a_retried_refresh_within_the_grace_keeps_the_session(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.accounts.refresh_reuse_grace_secs = 2).await;
    let first = app.register("tabs").await;
    // Two tabs (or a retry whose answer was lost) present one refresh token at once.
    let body = json!({"refresh_token": refresh(&first)});
    let (a, b) = tokio::join!(
        app.post("/api/auth/refresh/", None, body.clone()),
        app.post("/api/auth/refresh/", None, body.clone()),
    );
    let (a, b) = (a.assert_ok().clone(), b.assert_ok().clone());
    assert_ne!(refresh(&a), refresh(&b));
    for payload in [&a, &b] {
        app.get("/api/auth/me/", Some(token(payload)))
            .await
            .assert_ok();
    }
    // Both new refresh tokens still work: the session was not ended.
    app.post(
        "/api/auth/refresh/",
        None,
        json!({"refresh_token": refresh(&a)}),
    )
    .await
    .assert_ok();
    // After the grace (on the server's clock), presenting the first token again is
    // reuse: the session ends.
    app.clock.advance(std::time::Duration::from_millis(2100));
    app.post("/api/auth/refresh/", None, body)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/auth/me/", Some(token(&b)))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn refresh_rotates_and_reuse_ends_the_session(db: TestDatabase) {
    // No reuse grace: any second presentation is theft.
    let app = spawn_app_with(db, |c| c.core.accounts.refresh_reuse_grace_secs = 0).await;
    let first = app.register("dave").await;
    let second = app
        .post(
            "/api/auth/refresh/",
            None,
            json!({"refresh_token": refresh(&first)}),
        )
        .await;
    let second = second.assert_ok().clone();
    assert_ne!(refresh(&second), refresh(&first));
    assert_eq!(second["user"]["username"], "dave");
    app.get("/api/auth/me/", Some(token(&second)))
        .await
        .assert_ok();

    // The rotated-out token presented again: theft. The session ends, new tokens too.
    app.post(
        "/api/auth/refresh/",
        None,
        json!({"refresh_token": refresh(&first)}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/api/auth/refresh/",
        None,
        json!({"refresh_token": refresh(&second)}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.get("/api/auth/me/", Some(token(&second)))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/auth/me/", Some(token(&first)))
        .await
        .assert_error(401, "UNAUTHORIZED");

    // Other sessions of the user are untouched.
    let other = app.login("dave", PASSWORD).await.assert_ok().clone();
    app.get("/api/auth/me/", Some(token(&other)))
        .await
        .assert_ok();
    app.post(
        "/api/auth/refresh/",
        None,
        json!({"refresh_token": "made-up"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post("/api/auth/refresh/", None, json!({}))
        .await
        .assert_error(400, "INVALID_PARAMS");
}

async fn expired_access_tokens_are_refused(db: TestDatabase) {
    let app = spawn_app_with(db, |c| {
        c.core.accounts.access_ttl_secs = 1;
    })
    .await;
    let login = app.register("erin").await;
    assert_eq!(login["expires_in"], 1);
    // 1 s lifetime + 5 s leeway, on the server's clock.
    app.clock.advance(std::time::Duration::from_secs(7));
    app.get("/api/auth/me/", Some(token(&login)))
        .await
        .assert_error(401, "UNAUTHORIZED");
    // The refresh token still works and gives a fresh access token.
    let renewed = app
        .post(
            "/api/auth/refresh/",
            None,
            json!({"refresh_token": refresh(&login)}),
        )
        .await;
    app.get("/api/auth/me/", Some(token(renewed.assert_ok())))
        .await
        .assert_ok();
}

async fn logout_ends_one_session_or_all(db: TestDatabase) {
    let app = spawn_app(db).await;
    let phone = app.register("frank").await;
    let laptop = app.login("frank", PASSWORD).await.assert_ok().clone();
    let tablet = app.login("frank", PASSWORD).await.assert_ok().clone();

    app.post(
        "/api/auth/logout/",
        Some(token(&phone)),
        json!({"refresh_token": refresh(&phone)}),
    )
    .await
    .assert_ok();
    app.post(
        "/api/auth/refresh/",
        None,
        json!({"refresh_token": refresh(&phone)}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.get("/api/auth/me/", Some(token(&phone)))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/auth/me/", Some(token(&laptop)))
        .await
        .assert_ok();

    // Without a body: the caller's own session.
    let reply = app
        .call(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(token(&tablet)),
            None,
        )
        .await;
    assert_eq!(reply.assert_ok()["ok"], true);
    app.get("/api/auth/me/", Some(token(&tablet)))
        .await
        .assert_error(401, "UNAUTHORIZED");

    let desk = app.login("frank", PASSWORD).await.assert_ok().clone();
    app.post(
        "/api/auth/logout/",
        Some(token(&laptop)),
        json!({"all": true}),
    )
    .await
    .assert_ok();
    for session in [&laptop, &desk] {
        app.get("/api/auth/me/", Some(token(session)))
            .await
            .assert_error(401, "UNAUTHORIZED");
        app.post(
            "/api/auth/refresh/",
            None,
            json!({"refresh_token": refresh(session)}),
        )
        .await
        .assert_error(401, "UNAUTHORIZED");
    }
    app.post("/api/auth/logout/", None, json!({}))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn someone_elses_refresh_token_is_not_logged_out(db: TestDatabase) {
    let app = spawn_app(db).await;
    let grace = app.register("grace").await;
    let heidi = app.register("heidi").await;
    app.post(
        "/api/auth/logout/",
        Some(token(&grace)),
        json!({"refresh_token": refresh(&heidi)}),
    )
    .await
    .assert_ok();
    app.post(
        "/api/auth/refresh/",
        None,
        json!({"refresh_token": refresh(&heidi)}),
    )
    .await
    .assert_ok();
}

async fn login_attempts_are_rate_limited(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.http.login_rate_per_min = 3).await;
    for _ in 0..3 {
        app.login("ivan", "wrong password")
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
    let limited = app.login("ivan", "wrong password").await;
    limited.assert_error(429, "RATE_LIMIT");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

/// The per-account limit counts accounts, not spellings: once `victim` is at its limit,
/// full-width, mixed and upper-case spellings and the account's email are limited too (from
/// other addresses, so the per-address limit is not what stops them), even with the right
/// password; sign-up under another spelling of the name is limited likewise.
async fn the_login_limit_counts_accounts_not_spellings(db: TestDatabase) {
    let app = spawn_app_with(db, |c| {
        c.http.login_rate_per_min = 3;
        c.http.trust_proxy_headers = true;
    })
    .await;
    let from = |n: u8, path: &str, body: Value| {
        app.send(
            app.client
                .post(app.url(path))
                .header("x-forwarded-for", format!("192.0.2.{n}"))
                .json(&body),
        )
    };
    from(
        1,
        "/api/auth/register/",
        json!({"username": "victim", "password": "the right password", "email": "victim@example.com"}),
    )
    .await
    .assert_ok();
    for n in 2..5 {
        from(
            n,
            "/api/auth/login/",
            json!({"username": "victim", "password": "wrong password"}),
        )
        .await
        .assert_error(401, "UNAUTHORIZED");
    }
    for (n, spelling) in [
        (10, "victim"),
        (11, "\u{ff56}\u{ff49}\u{ff43}\u{ff54}\u{ff49}\u{ff4d}"),
        (12, "v\u{ff49}ctim"),
        (13, "VICTIM"),
        (14, " Victim "),
        (15, "victim@example.com"),
        (16, "VICTIM@EXAMPLE.COM"),
    ] {
        from(
            n,
            "/api/auth/login/",
            json!({"username": spelling, "password": "the right password"}),
        )
        .await
        .assert_error(429, "RATE_LIMIT");
    }
    from(
        20,
        "/api/auth/register/",
        json!({"username": "\u{ff56}ictim", "password": "another password"}),
    )
    .await
    .assert_error(429, "RATE_LIMIT");
    // Another account is not affected.
    from(
        21,
        "/api/auth/register/",
        json!({"username": "bystander", "password": "a bystander password"}),
    )
    .await
    .assert_ok();
}

async fn tokens_survive_a_restart(db: TestDatabase) {
    let app = spawn_app(db).await;
    let login = app.register("judy").await;
    // A second server on the same database (a restart) accepts the same tokens: the
    // generated secret is kept in the database.
    let mut config = crate::helpers::test_config(&app.db, &app.wechat, &app.books);
    config.core.database.url = app.db_url.clone();
    let refbook = refbook_core::Refbook::builder(config.core)
        .build()
        .await
        .unwrap();
    let again = refbook_http::RunningServer::start(refbook, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let reply = app
        .send(
            app.client
                .get(format!("{}/api/auth/me/", again.url()))
                .bearer_auth(token(&login)),
        )
        .await;
    assert_eq!(reply.assert_ok()["username"], "judy");
}

backend_tests!(
    register_returns_the_login_payload,
    registration_validates_every_field,
    taken_usernames_and_emails_conflict,
    login_by_username_or_email_with_one_generic_failure,
    oauth2_password_grant,
    refresh_rotates_and_reuse_ends_the_session,
    a_retried_refresh_within_the_grace_keeps_the_session,
    expired_access_tokens_are_refused,
    logout_ends_one_session_or_all,
    someone_elses_refresh_token_is_not_logged_out,
    login_attempts_are_rate_limited,
    the_login_limit_counts_accounts_not_spellings,
    tokens_survive_a_restart,
);
