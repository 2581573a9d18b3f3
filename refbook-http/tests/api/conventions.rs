//! The contract's conventions: paths, errors, request ids, limits, languages, CORS, HTTP/2.

use refbook_core::testing::TestDatabase;
use refbook_core::{backend_tests, database_independent_tests};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, token};

async fn trailing_slash_is_optional_and_never_redirects(db: TestDatabase) {
    let app = spawn_app(db).await;
    let login = app.register("slashy").await;
    for path in ["/api/auth/me/", "/api/auth/me"] {
        let reply = app.get(path, Some(token(&login))).await;
        assert_eq!(reply.assert_ok()["username"], "slashy", "{path}");
    }
    // A POST without the slash keeps its body (no redirect).
    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "slashy", "password": crate::helpers::PASSWORD}),
        )
        .await;
    reply.assert_ok();
}

async fn unknown_routes_and_methods_are_contract_errors(db: TestDatabase) {
    let app = spawn_app(db).await;
    let reply = app.get("/api/no/such/thing/", None).await;
    reply.assert_error(404, "NOT_FOUND");
    assert!(reply.header("x-request-id").is_some());

    let reply = app.get("/api/auth/login/", None).await;
    reply.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));

    let reply = app.delete("/api/user/profile/", None).await;
    reply.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(reply.header("allow"), Some("GET, PUT, PATCH, OPTIONS"));
}

async fn bad_bodies_are_400_and_large_ones_413(db: TestDatabase) {
    let app = spawn_app(db).await;
    let malformed = app
        .send(
            app.client
                .post(app.url("/api/auth/register/"))
                .header("content-type", "application/json")
                .body("{\"username\": \"x\","),
        )
        .await;
    malformed.assert_error(400, "INVALID_PARAMS");

    let wrong_type = app
        .post(
            "/api/auth/register/",
            None,
            json!({"username": "someone", "password": 12345678901_i64}),
        )
        .await;
    wrong_type.assert_error(400, "INVALID_PARAMS");
    assert_eq!(wrong_type.body["details"]["field"], "password");
    assert!(
        !wrong_type.text.contains("12345678901"),
        "never echo values: {}",
        wrong_type.text
    );

    let missing = app
        .post("/api/auth/register/", None, json!({"username": "someone"}))
        .await;
    missing.assert_error(400, "INVALID_PARAMS");
    assert_eq!(missing.body["details"]["field"], "password");

    let huge = "x".repeat(70 * 1024);
    let too_large = app
        .post(
            "/api/auth/register/",
            None,
            json!({"username": "big", "password": huge}),
        )
        .await;
    too_large.assert_error(413, "PAYLOAD_TOO_LARGE");

    // Unknown fields are ignored.
    let reply = app
        .post(
            "/api/auth/register/",
            None,
            json!({"username": "extra", "password": crate::helpers::PASSWORD, "favourite_colour": "blue"}),
        )
        .await;
    reply.assert_ok();
}

async fn request_ids_are_echoed_or_made(db: TestDatabase) {
    let app = spawn_app(db).await;
    let reply = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-request-id", "trace-42"),
        )
        .await;
    assert_eq!(reply.header("x-request-id"), Some("trace-42"));
    let a = app.get("/healthz", None).await;
    let b = app.get("/healthz", None).await;
    let (a, b) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert!(!a.is_empty() && a != b);
}

async fn messages_follow_accept_language(db: TestDatabase) {
    let app = spawn_app(db).await;
    let zh = app.get("/api/auth/me/", None).await;
    zh.assert_error(401, "UNAUTHORIZED");
    let english = app
        .send(
            app.client
                .get(app.url("/api/auth/me/"))
                .header("accept-language", "en-US,en;q=0.9"),
        )
        .await;
    english.assert_error(401, "UNAUTHORIZED");
    assert_ne!(zh.body["message"], english.body["message"]);
    assert!(english.body["message"].as_str().unwrap().is_ascii());
    assert!(!zh.body["message"].as_str().unwrap().is_ascii());

    let configured = spawn_app_with(
        TestDatabase::create(refbook_core::testing::TestBackend::Sqlite)
            .await
            .unwrap(),
        |c| {
            c.core.general.language = refbook_core::Language::En;
        },
    )
    .await;
    let reply = configured.get("/api/auth/me/", None).await;
    assert!(reply.body["message"].as_str().unwrap().is_ascii());
}

async fn missing_or_bad_tokens_are_401_with_challenge(db: TestDatabase) {
    let app = spawn_app(db).await;
    for auth in [
        None,
        Some("Bearer not-a-jwt"),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer "),
    ] {
        let mut request = app.client.get(app.url("/api/auth/me/"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let reply = app.send(request).await;
        reply.assert_error(401, "UNAUTHORIZED");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{auth:?}");
    }
}

async fn health_and_readiness(db: TestDatabase) {
    let app = spawn_app(db).await;
    assert_eq!(app.get("/healthz", None).await.assert_ok()["status"], "ok");
    assert_eq!(app.get("/readyz/", None).await.assert_ok()["status"], "ok");
}

async fn cors_preflight_is_answered_for_configured_origins(db: TestDatabase) {
    let app = spawn_app_with(db, |c| {
        c.http.cors_origins = vec!["https://app.example.com".into()]
    })
    .await;
    let preflight = app
        .send(
            app.client
                .request(Method::OPTIONS, app.url("/api/auth/login/"))
                .header("origin", "https://app.example.com")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(preflight.status.as_u16(), 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(preflight
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(preflight
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));

    let foreign = app
        .send(
            app.client
                .request(Method::OPTIONS, app.url("/api/auth/login/"))
                .header("origin", "https://evil.example.net")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert!(foreign.header("access-control-allow-origin").is_none());

    let simple = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("origin", "https://app.example.com"),
        )
        .await;
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
}

async fn http2_is_served(db: TestDatabase) {
    let app = spawn_app(db).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

async fn graceful_stop_finishes_and_frees_the_port(db: TestDatabase) {
    let app = spawn_app(db).await;
    let addr = app.server.addr();
    app.get("/healthz", None).await.assert_ok();
    let crate::helpers::TestApp { server, db, .. } = app;
    server.stop().await.unwrap();
    assert!(reqwest::get(format!("http://{addr}/healthz"))
        .await
        .is_err());
    drop(db);
}

async fn the_openapi_document_covers_every_route(db: TestDatabase) {
    let app = spawn_app(db).await;
    let reply = app.get("/api/openapi.json", None).await;
    let doc = reply.assert_ok();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for spec in refbook_http::routes::ROUTES
        .iter()
        .filter(|spec| !spec.is_web_page())
    {
        let key = paths
            .keys()
            .find(|k| k.trim_end_matches('/') == spec.pattern)
            .unwrap_or_else(|| panic!("{} is not documented", spec.pattern));
        for method in spec.methods() {
            let op = &paths[key][method.as_str().to_ascii_lowercase()];
            assert!(op["summary"].is_string(), "{key} {method}");
            assert_eq!(
                op.get("security").is_some(),
                !spec.is_public(),
                "{key} {method}"
            );
        }
    }
    assert!(
        paths["/api/conversations/{id}/messages/"]["post"]["responses"]["200"]["content"]
            ["text/event-stream"]
            .is_object()
    );
}

async fn metrics_count_requests_lookups_and_tokens(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("metric").await;
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"content": "问"}),
    )
    .await
    .assert_ok();
    app.get("/api/auth/me/", Some(&t)).await.assert_ok();
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, 200);
    // OpenMetrics (`# EOF`, `_total`) labelled as such, so Prometheus parses it right.
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(reply.text.trim_end().ends_with("# EOF"));
    // This server's own registry: exact counts, whatever runs beside it.
    for expected in [
        "refbook_http_requests_total{route=\"/api/auth/me\",method=\"GET\",status=\"200\"} 1\n",
        "refbook_http_requests_total{route=\"/api/conversations/{id}/messages\",method=\"POST\",status=\"200\"} 1\n",
        "refbook_http_request_duration_seconds_bucket{",
        "refbook_book_lookups_total{source=\"douban\",outcome=\"hit\"} 1\n",
        "refbook_llm_tokens_total{kind=\"prompt\"} ",
        "refbook_llm_replies_total{status=\"complete\"} 1\n",
        "refbook_llm_time_to_first_token_seconds_count 1\n",
        "refbook_sse_streams_active 0\n",
        "refbook_generations_active 0\n",
    ] {
        assert!(
            reply.text.contains(expected),
            "{expected} missing:\n{}",
            reply.text
        );
    }
}

/// `nosniff` on every answer; JSON answers may load and frame nothing; answers to a
/// signed-in caller are not stored by caches; pages keep their own policy.
async fn every_answer_carries_the_security_headers(db: TestDatabase) {
    let app = spawn_app(db).await;
    let login = app.register("headers").await;
    let t = token(&login);
    let signed_in = [
        app.get("/api/auth/me/", Some(t)).await,
        app.get("/api/conversations/", Some(t)).await,
        app.get("/v1/models", Some(t)).await,
        app.get("/api/conversations/999999/", Some(t)).await,
    ];
    for reply in &signed_in {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            reply.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    }
    for reply in [
        app.get("/healthz", None).await,
        app.get("/api/openapi.json", None).await,
        app.get("/api/no/such/thing/", None).await,
        app.get("/api/auth/me/", None).await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert!(reply.header("content-security-policy").is_some());
    }
    let page = app.get("/playground", None).await;
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
}

backend_tests!(
    metrics_count_requests_lookups_and_tokens,
    health_and_readiness
);

database_independent_tests!(
    every_answer_carries_the_security_headers,
    the_openapi_document_covers_every_route,
    trailing_slash_is_optional_and_never_redirects,
    unknown_routes_and_methods_are_contract_errors,
    bad_bodies_are_400_and_large_ones_413,
    request_ids_are_echoed_or_made,
    messages_follow_accept_language,
    missing_or_bad_tokens_are_401_with_challenge,
    cors_preflight_is_answered_for_configured_origins,
    http2_is_served,
    graceful_stop_finishes_and_frees_the_port,
);
