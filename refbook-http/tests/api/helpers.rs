//! Spawning the server on a fresh database and talking to it through a real socket.

use std::net::SocketAddr;

use refbook_core::testing::TestDatabase;
use refbook_core::{Config, Refbook};
use refbook_http::RunningServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wiremock::MockServer;

pub const PASSWORD: &str = "correct horse battery";

/// A running server with its database and a WeChat stand-in.
pub struct TestApp {
    pub server: RunningServer,
    pub client: reqwest::Client,
    pub wechat: MockServer,
    /// Stands in for Douban, Open Library (API and covers) and Google Books at once.
    pub books: MockServer,
    pub db_url: String,
    // Dropped last: removes the database.
    pub db: TestDatabase,
}

/// What a test response holds.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error response of the contract's shape with `status` and `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text);
        &self.body
    }
}

/// Defaults for tests: generous login limits so ordinary tests never trip them.
pub fn test_config(db: &TestDatabase, wechat: &MockServer, books: &MockServer) -> Config {
    let mut config = Config::default();
    config.database_url = db.url().to_owned();
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.login_rate_per_min = 10_000;
    config.wechat_appid = Some("wx-test-app".into());
    config.wechat_secret = Some(refbook_core::config::Secret::new("wechat-app-secret-value"));
    config.wechat_base_url = wechat.uri();
    config.douban_base_url = Some(books.uri());
    config.openlibrary_base_url = books.uri();
    config.openlibrary_covers_url = books.uri();
    config.googlebooks_base_url = books.uri();
    config.cover_hosts = vec!["127.0.0.1".into()];
    config.book_source_timeout_secs = 2;
    config
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: TestDatabase, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let wechat = MockServer::start().await;
    let books = MockServer::start().await;
    let mut config = test_config(&db, &wechat, &books);
    tweak(&mut config);
    let bind = config.bind;
    let refbook = Refbook::builder(config)
        .build()
        .await
        .expect("build refbook");
    let server = RunningServer::start(refbook, bind)
        .await
        .expect("start server");
    TestApp {
        server,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        wechat,
        books,
        db_url: db.url().to_owned(),
        db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers `username` with [`PASSWORD`]; returns the login payload.
    pub async fn register(&self, username: &str) -> Value {
        let reply = self
            .post(
                "/api/auth/register/",
                None,
                json!({ "username": username, "password": PASSWORD, "email": format!("{username}@example.com") }),
            )
            .await;
        reply.assert_ok().clone()
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/login/",
            None,
            json!({ "username": username, "password": password }),
        )
        .await
    }
}

/// The access token of a login payload.
pub fn token(payload: &Value) -> &str {
    payload["token"].as_str().expect("token in payload")
}

/// The refresh token of a login payload.
pub fn refresh(payload: &Value) -> &str {
    payload["refresh_token"]
        .as_str()
        .expect("refresh_token in payload")
}
