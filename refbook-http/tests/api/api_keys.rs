//! Personal API keys: created once, listed without the key, authenticating like an access
//! token, revoked at once, ended with the account, limited in number.

use refbook_core::backend_tests;
use refbook_core::testing::TestDatabase;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, token, TestApp, PASSWORD};

/// Creates a key named `name` for the holder of `bearer`; the `201` answer.
pub async fn create_key(app: &TestApp, bearer: &str, name: &str) -> Value {
    let created = app
        .post("/api/user/api-keys/", Some(bearer), json!({ "name": name }))
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    created.body
}

/// The key string of a creation answer.
pub fn key_of(created: &Value) -> &str {
    created["key"].as_str().expect("key")
}

async fn keys_authenticate_until_revoked(db: TestDatabase) {
    let app = spawn_app(db).await;
    let t = token(&app.register("keeper").await).to_owned();
    let created = create_key(&app, &t, "  laptop script ").await;
    let key = key_of(&created).to_owned();
    assert!(key.starts_with("rbk_") && key.len() == 47, "{key}");
    assert_eq!(created["name"], "laptop script");
    assert_eq!(created["last_used_at"], Value::Null);
    assert!(created["id"].as_i64().is_some() && created["created_at"].is_string());

    // The key works wherever an access token does.
    let me = app.get("/api/auth/me/", Some(&key)).await;
    assert_eq!(me.assert_ok()["username"], "keeper");
    app.get("/api/user/profile/", Some(&key)).await.assert_ok();

    // Listed without the key, with its last use recorded.
    let listed = app.get("/api/user/api-keys/", Some(&t)).await;
    let keys = listed.assert_ok().as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], created["id"]);
    assert!(keys[0].get("key").is_none(), "{}", listed.text);
    assert!(!listed.text.contains(&key));
    assert!(keys[0]["last_used_at"].is_string(), "{}", listed.text);

    // Another user cannot see or revoke it.
    let other = token(&app.register("stranger").await).to_owned();
    let theirs = app.get("/api/user/api-keys/", Some(&other)).await;
    assert_eq!(theirs.assert_ok(), &json!([]));
    let id = created["id"].as_i64().unwrap();
    app.delete(&format!("/api/user/api-keys/{id}/"), Some(&other))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/api/auth/me/", Some(&key)).await.assert_ok();

    // Logging out with a key ends no login session and not the key itself.
    app.post("/api/auth/logout/", Some(&key), json!({}))
        .await
        .assert_ok();
    app.get("/api/auth/me/", Some(&key)).await.assert_ok();
    app.get("/api/auth/me/", Some(&t)).await.assert_ok();

    // Revoked: the same 401 as any bad token, at once.
    app.delete(&format!("/api/user/api-keys/{id}/"), Some(&t))
        .await
        .assert_ok();
    let refused = app.get("/api/auth/me/", Some(&key)).await;
    refused.assert_error(401, "UNAUTHORIZED");
    let made_up = app
        .get("/api/auth/me/", Some(&format!("rbk_{}", "A".repeat(43))))
        .await;
    made_up.assert_error(401, "UNAUTHORIZED");
    assert_eq!(refused.body, made_up.body);
    app.delete(&format!("/api/user/api-keys/{id}/"), Some(&t))
        .await
        .assert_error(404, "NOT_FOUND");
}

async fn keys_are_limited_checked_and_end_with_the_account(db: TestDatabase) {
    let app = spawn_app(db).await;
    let t = token(&app.register("collector").await).to_owned();
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(65)}),
        json!({}),
    ] {
        let refused = app.post("/api/user/api-keys/", Some(&t), bad).await;
        refused.assert_error(400, "INVALID_PARAMS");
    }
    let max = refbook_core::accounts::MAX_API_KEYS_PER_USER;
    let mut keys = Vec::new();
    for n in 0..max {
        keys.push(key_of(&create_key(&app, &t, &format!("key {n}")).await).to_owned());
    }
    let over = app
        .post(
            "/api/user/api-keys/",
            Some(&t),
            json!({"name": "one too many"}),
        )
        .await;
    over.assert_error(409, "CONFLICT");
    let listed = app.get("/api/user/api-keys/", Some(&t)).await;
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), max);
    assert_eq!(names[0], format!("key {}", max - 1), "newest first");

    // A key may manage keys and the account like any bearer token; deleting the account
    // ends every key.
    app.call(
        reqwest::Method::DELETE,
        "/api/user/",
        Some(&keys[0]),
        Some(json!({"password": PASSWORD})),
    )
    .await
    .assert_ok();
    for key in &keys {
        app.get("/api/auth/me/", Some(key))
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
}

backend_tests!(
    keys_authenticate_until_revoked,
    keys_are_limited_checked_and_end_with_the_account,
);
