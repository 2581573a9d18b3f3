//! Spawning the server on a fresh database and talking to it through a real socket.

use std::net::SocketAddr;

use refbook_core::config::GuideMode;
use refbook_core::testing::TestDatabase;
use refbook_core::Refbook;
use refbook_http::{RunningServer, ServerConfig};
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
    /// Stands in for the OpenAI-compatible LLM.
    pub llm: refbook_core::testing::MockLlm,
    pub db_url: String,
    /// The configuration the server runs with (for a second instance on the same database).
    pub config: ServerConfig,
    /// The clock the server's accounts read: tests move it to expire tokens.
    pub clock: refbook_core::testing::ShiftedClock,
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

/// A configuration for a server on the SQLite file at `path` with nothing else set.
pub fn test_config_for_url(path: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.core.database.url = format!("sqlite://{}", path.display());
    config.http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    // Tests never download: keyword search only unless a test brings an embedder.
    config.core.books.embed_model = Some("off".into());
    config.core.books.guide = GuideMode::Off;
    config
}

/// Defaults for tests: generous login limits so ordinary tests never trip them.
pub fn test_config(db: &TestDatabase, wechat: &MockServer, books: &MockServer) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.core.database.url = db.url().to_owned();
    config.http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.login_rate_per_min = 10_000;
    let core = &mut config.core;
    core.wechat.appid = Some("wx-test-app".into());
    core.wechat.secret = Some(refbook_core::config::Secret::new("wechat-app-secret-value"));
    core.wechat.base_url = wechat.uri();
    core.books.douban_base_url = Some(books.uri());
    core.books.openlibrary_base_url = books.uri();
    core.books.openlibrary_covers_url = books.uri();
    core.books.googlebooks_base_url = books.uri();
    core.books.cover_hosts = vec![books.address().to_string()];
    core.books.source_timeout_secs = 2;
    // Tests never download: keyword search only unless a test brings an embedder.
    core.books.embed_model = Some("off".into());
    // Guides would ask the mock model too; the tests that want one turn them on.
    core.books.guide = GuideMode::Off;
    config
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: TestDatabase, tweak: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let wechat = MockServer::start().await;
    let books = MockServer::start().await;
    let llm = refbook_core::testing::MockLlm::start().await;
    let mut config = test_config(&db, &wechat, &books);
    config.core.llm.base_url = llm.url();
    config.core.llm.api_key = Some(refbook_core::config::Secret::new("sk-test-key"));
    config.core.llm.model = "deepseek-reasoner".into();
    tweak(&mut config);
    let kept = config.clone();
    let ServerConfig { core, http } = config;
    let clock = refbook_core::testing::ShiftedClock::default();
    let metrics = refbook_http::metrics::Metrics::new();
    let refbook = refbook_http::metrics::instrument(Refbook::builder(core), &metrics)
        .clock(std::sync::Arc::new(clock.clone()))
        .build()
        .await
        .expect("build refbook");
    let server = RunningServer::start_with(refbook, http, metrics)
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
        llm,
        db_url: db.url().to_owned(),
        config: kept,
        clock,
        db,
    }
}

/// Starts a server with `config` on a free port.
pub async fn start_server(config: ServerConfig) -> RunningServer {
    let ServerConfig { core, mut http } = config;
    http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let refbook = Refbook::builder(core).build().await.expect("build refbook");
    RunningServer::start_with(refbook, http, refbook_http::metrics::Metrics::new())
        .await
        .expect("start server")
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

    /// Another instance on the same database and upstreams (a second server, or this one
    /// restarted).
    pub async fn sibling(&self) -> RunningServer {
        start_server(self.config.clone()).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_at(&self.server.url(), method, path, token, body)
            .await
    }

    /// As [`call`](Self::call), on the server at `base` (a sibling).
    pub async fn call_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{base}{path}"));
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

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, token, None).await
    }

    /// A streaming question (`Accept: text/event-stream`), ready to send.
    pub fn ask_request(&self, token: &str, id: i64, content: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(&format!("/api/conversations/{id}/messages/")))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .json(&json!({ "content": content }))
    }

    /// Starts a streaming question in the background; the task ends with the whole body.
    pub fn spawn_ask(
        &self,
        token: &str,
        id: i64,
        content: &str,
    ) -> tokio::task::JoinHandle<String> {
        let request = self.ask_request(token, id, content);
        tokio::spawn(async move {
            request
                .send()
                .await
                .expect("request")
                .text()
                .await
                .expect("body")
        })
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

pub const SANTI: &str = "9787536692930";

impl TestApp {
    /// Makes the book 三体 known to the Douban stand-in, its cover at `cover_path` there.
    pub async fn mount_santi(&self, cover_path: &str) {
        use wiremock::matchers::path;
        use wiremock::{Mock, ResponseTemplate};
        Mock::given(path(format!("/v2/book/isbn/{SANTI}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "title": "三体", "author": ["刘慈欣"], "publisher": "重庆出版社",
                "summary": "文化大革命如火如荼进行的同时……", "author_intro": "中国科幻作家。",
                "images": {"large": format!("{}{cover_path}", self.books.uri())}
            })))
            .mount(&self.books)
            .await;
    }

    /// Makes the book 三体 known (a Douban hit) and stored.
    pub async fn seed_book(&self, token: &str) {
        self.mount_santi("/s1.jpg").await;
        self.get(&format!("/api/books/{SANTI}/"), Some(token))
            .await
            .assert_ok();
    }

    /// A user with the book stored and a conversation about it: `(token, conversation id)`.
    pub async fn user_with_conversation(&self, username: &str) -> (String, i64) {
        let token = token(&self.register(username).await).to_owned();
        self.seed_book(&token).await;
        let reply = self
            .post("/api/conversations/", Some(&token), json!({"isbn": SANTI}))
            .await;
        let id = reply.assert_ok()["id"].as_i64().expect("conversation id");
        (token, id)
    }

    /// Asks in a conversation with `Accept: text/event-stream`; the whole body.
    pub async fn ask_streaming(&self, token: &str, id: i64, content: &str) -> Reply {
        self.send(self.ask_request(token, id, content)).await
    }
}

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    /// `id:` + `data:` JSON.
    Event(u64, Value),
    /// `: keep-alive`.
    KeepAlive,
    /// `data: [DONE]`.
    Done,
}

/// Parses an SSE body strictly as the contract writes it: blocks separated by a blank
/// line; each is a comment, `data: [DONE]`, or exactly `id: N` then one `data:` line.
pub fn parse_sse(body: &str) -> Vec<Sse> {
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "must end with [DONE] and a blank line: {body:?}"
    );
    let mut out = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.is_empty()) {
        let lines: Vec<&str> = block.split('\n').collect();
        match lines.as_slice() {
            [": keep-alive"] => out.push(Sse::KeepAlive),
            ["data: [DONE]"] => out.push(Sse::Done),
            [id, data] => {
                let id = id
                    .strip_prefix("id: ")
                    .unwrap_or_else(|| panic!("id line: {block:?}"));
                let data = data
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("data line: {block:?}"));
                out.push(Sse::Event(
                    id.parse().expect("numeric id"),
                    serde_json::from_str(data).expect("JSON data"),
                ));
            }
            _ => panic!("unexpected SSE block {block:?}"),
        }
    }
    assert_eq!(
        out.iter().filter(|e| **e == Sse::Done).count(),
        1,
        "exactly one [DONE]"
    );
    assert_eq!(out.last(), Some(&Sse::Done));
    out
}

/// The concatenated `delta.content` and `delta.reasoning_content` of parsed events.
pub fn texts(events: &[Sse]) -> (String, String) {
    let (mut content, mut reasoning) = (String::new(), String::new());
    for event in events {
        if let Sse::Event(_, data) = event {
            let delta = &data["choices"][0]["delta"];
            content.push_str(delta["content"].as_str().unwrap_or(""));
            reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        }
    }
    (content, reasoning)
}

/// The `refbook-http` binary running as operators run it, with its log lines kept.
pub struct Binary {
    pub child: tokio::process::Child,
    pub url: String,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Reads stderr until the process closes it.
    pub reader: tokio::task::JoinHandle<()>,
}

/// Starts the binary with only `env` set (plus a free port and JSON logs), optionally
/// under an open-file limit of `fd_limit` (soft and hard, as `ulimit -n` sets them).
pub async fn start_binary(env: &[(&str, &str)], fd_limit: Option<u32>) -> Binary {
    use tokio::io::AsyncBufReadExt;
    let program = env!("CARGO_BIN_EXE_refbook-http");
    let mut command = match fd_limit {
        Some(limit) => {
            let mut sh = tokio::process::Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\""))
                .arg(program);
            sh
        }
        None => tokio::process::Command::new(program),
    };
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REFBOOK_BIND", "127.0.0.1:0")
        .env("REFBOOK_LOG_FORMAT", "json")
        // Never the internet: the default local model's hub is a closed local port unless
        // the test names one, and downloads go to a temp folder.
        .env(
            "REFBOOK_HF_ENDPOINT",
            refbook_core::testing::unreachable_hub(),
        )
        .env(
            "REFBOOK_LOCAL_MODEL_CACHE",
            std::env::temp_dir().join(format!("refbook-models-{}", std::process::id())),
        )
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn refbook-http");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = log.clone();
    let reader = tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("refbook-http listening") {
                let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if let (Some(tx), Some(addr)) = (tx.take(), parsed["address"].as_str()) {
                    let _ = tx.send(addr.to_owned());
                }
            }
            sink.lock().expect("log").push(line);
        }
    });
    let addr = tokio::time::timeout(std::time::Duration::from_secs(60), rx)
        .await
        .expect("the server announced its address")
        .expect("a listening line");
    Binary {
        child,
        url: format!("http://{addr}"),
        log,
        reader,
    }
}

/// The data of the last chunk (an event with `choices`) before `[DONE]`.
pub fn last_chunk(events: &[Sse]) -> &Value {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Sse::Event(_, data) if data.get("choices").is_some() => Some(data),
            _ => None,
        })
        .expect("a chunk")
}

/// The `error` object of the stream's error event, if any.
pub fn error_event(events: &[Sse]) -> Option<&Value> {
    events.iter().find_map(|e| match e {
        Sse::Event(_, data) if data.get("error").is_some() => Some(&data["error"]),
        _ => None,
    })
}
