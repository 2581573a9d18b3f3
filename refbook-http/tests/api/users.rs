//! `/api/user/…` and `/api/users/{username}/`.

use refbook_core::backend_tests;
use refbook_core::testing::TestDatabase;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{refresh, spawn_app, spawn_app_with, token, PASSWORD};

async fn profile_shows_the_user_and_usage(db: TestDatabase) {
    let app = spawn_app(db).await;
    let login = app.register("alice").await;
    let profile = app.get("/api/user/profile/", Some(token(&login))).await;
    let body = profile.assert_ok();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["id"], login["user"]["id"]);
    assert_eq!(
        body["usage"],
        json!({"period": "day", "used_tokens": 0, "limit_tokens": null})
    );

    let limited = spawn_app_with(
        TestDatabase::create(refbook_core::testing::TestBackend::Sqlite)
            .await
            .unwrap(),
        |c| {
            c.core.chat.daily_token_quota = 50_000;
        },
    )
    .await;
    let login = limited.register("bob").await;
    let body = limited.get("/api/user/profile", Some(token(&login))).await;
    assert_eq!(body.assert_ok()["usage"]["limit_tokens"], 50_000);
}

async fn profile_updates_only_what_is_sent(db: TestDatabase) {
    let app = spawn_app(db).await;
    let login = app.register("carol").await;
    let t = Some(token(&login));
    let patched = app
        .call(
            Method::PATCH,
            "/api/user/profile/",
            t,
            Some(json!({"nickname": " 卡罗尔 "})),
        )
        .await;
    let body = patched.assert_ok();
    assert_eq!(body["nickname"], "卡罗尔");
    assert_eq!(body["email"], "carol@example.com");

    let put = app
        .call(
            Method::PUT,
            "/api/user/profile/",
            t,
            Some(
                json!({"avatar_url": "https://img.example.com/c.png", "email": "new@example.com"}),
            ),
        )
        .await;
    let body = put.assert_ok();
    assert_eq!(body["avatar_url"], "https://img.example.com/c.png");
    assert_eq!(body["email"], "new@example.com");
    assert_eq!(body["nickname"], "卡罗尔");
    // Login by the new email works, by the old one no longer.
    app.login("new@example.com", PASSWORD).await.assert_ok();
    app.login("carol@example.com", PASSWORD)
        .await
        .assert_error(401, "UNAUTHORIZED");

    let cleared = app
        .call(
            Method::PATCH,
            "/api/user/profile/",
            t,
            Some(json!({"avatar_url": null, "email": null})),
        )
        .await;
    let body = cleared.assert_ok();
    assert!(body["avatar_url"].is_null() && body["email"].is_null());
    assert_eq!(
        app.get("/api/auth/me/", t).await.body["email"],
        serde_json::Value::Null
    );
}

async fn profile_updates_are_validated(db: TestDatabase) {
    let app = spawn_app(db).await;
    let login = app.register("dave").await;
    app.register("erin").await;
    let t = Some(token(&login));
    for (body, code, status) in [
        (
            json!({"avatar_url": "javascript:alert(1)"}),
            "INVALID_PARAMS",
            400,
        ),
        (json!({"email": "nope"}), "INVALID_PARAMS", 400),
        (json!({"nickname": ""}), "INVALID_PARAMS", 400),
        (json!({"nickname": 7}), "INVALID_PARAMS", 400),
        (json!({"email": "ERIN@example.com"}), "CONFLICT", 409),
    ] {
        app.call(Method::PATCH, "/api/user/profile/", t, Some(body))
            .await
            .assert_error(status, code);
    }
    let me = app.get("/api/auth/me/", t).await;
    assert_eq!(
        me.body["email"], "dave@example.com",
        "failed updates change nothing"
    );
    assert_eq!(me.body["nickname"], "dave");
}

async fn password_change_ends_every_other_session(db: TestDatabase) {
    let app = spawn_app(db).await;
    let phone = app.register("frank").await;
    let laptop = app.login("frank", PASSWORD).await.assert_ok().clone();
    let t = Some(token(&phone));

    app.post(
        "/api/user/password/",
        t,
        json!({"old_password": "wrong-old-pass", "new_password": "brand new secret"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/api/user/password/",
        t,
        json!({"old_password": PASSWORD, "new_password": "short"}),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");
    app.get("/api/auth/me/", t).await.assert_ok();

    let fresh = app
        .post(
            "/api/user/password/",
            t,
            json!({"old_password": PASSWORD, "new_password": "brand new secret"}),
        )
        .await;
    let fresh = fresh.assert_ok().clone();
    app.get("/api/auth/me/", Some(token(&fresh)))
        .await
        .assert_ok();
    app.post(
        "/api/auth/refresh/",
        None,
        json!({"refresh_token": refresh(&fresh)}),
    )
    .await
    .assert_ok();
    for old in [&phone, &laptop] {
        app.get("/api/auth/me/", Some(token(old)))
            .await
            .assert_error(401, "UNAUTHORIZED");
        app.post(
            "/api/auth/refresh/",
            None,
            json!({"refresh_token": refresh(old)}),
        )
        .await
        .assert_error(401, "UNAUTHORIZED");
    }
    app.login("frank", PASSWORD)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.login("frank", "brand new secret").await.assert_ok();
}

async fn deleting_the_account_removes_everything(db: TestDatabase) {
    let app = spawn_app(db).await;
    let login = app.register("grace").await;
    let other = app.login("grace", PASSWORD).await.assert_ok().clone();
    let t = Some(token(&login));
    app.call(Method::DELETE, "/api/user/", t, Some(json!({})))
        .await
        .assert_error(400, "INVALID_PARAMS");
    app.call(
        Method::DELETE,
        "/api/user/",
        t,
        Some(json!({"password": "not my password"})),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.get("/api/auth/me/", t).await.assert_ok();

    let deleted = app
        .call(
            Method::DELETE,
            "/api/user",
            t,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.assert_ok()["ok"], true);
    app.get("/api/auth/me/", t)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/auth/me/", Some(token(&other)))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.login("grace", PASSWORD)
        .await
        .assert_error(401, "UNAUTHORIZED");
    let again = app.register("grace").await;
    assert_ne!(again["user"]["id"], login["user"]["id"]);
}

async fn public_profiles_hide_the_email(db: TestDatabase) {
    let app = spawn_app(db).await;
    let heidi = app.register("heidi").await;
    let ivan = app.register("ivan").await;
    let reply = app.get("/api/users/heidi/", Some(token(&ivan))).await;
    let body = reply.assert_ok();
    assert_eq!(body["username"], "heidi");
    assert_eq!(body["id"], heidi["user"]["id"]);
    assert!(body.get("email").is_none(), "{body}");
    assert_eq!(
        body.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["avatar_url", "created_at", "id", "nickname", "username"]
    );
    app.get("/api/users/nobody/", Some(token(&ivan)))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/api/users/%20%20/", Some(token(&ivan)))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/api/users/heidi/", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

backend_tests!(
    profile_shows_the_user_and_usage,
    profile_updates_only_what_is_sent,
    profile_updates_are_validated,
    password_change_ends_every_other_session,
    deleting_the_account_removes_everything,
    public_profiles_hide_the_email,
);
