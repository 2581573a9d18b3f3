//! Load runs against a real Refbook server on loopback, bounded in requests and time.
//!
//! ```text
//! cargo run --release -p refbook-benches --bin refbook-load -- logins [--concurrency N] [--requests N]
//! cargo run --release -p refbook-benches --bin refbook-load -- books [--concurrency N] [--requests N]
//! cargo run --release -p refbook-benches --bin refbook-load -- chat [--concurrency N] [--requests N] [--questions N] [--streams N] [--compare]
//! ```
//!
//! Every scenario starts the server as a child process (this same binary, `serve`), so its
//! memory can be read from `/proc`: each reports the server's RSS after the run. `logins`
//! (one account, many clients), `books` (cached lookups of a stored book) and `chat`
//! (against a fast local mock OpenAI-compatible upstream: full chats per second, the time
//! to first token the server adds over calling the mock directly, memory per open stream).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use refbook_benches::fast_mock::FastMock;
use refbook_benches::latency::Latencies;
use refbook_core::testing::{MockLlm, MockReply, Step};
use refbook_core::{Config, Refbook};
use refbook_http::RunningServer;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

/// The same allocator as the `refbook-http` binary, so `serve` measures what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PASSWORD: &str = "load-test-password";
const ISBN: &str = "9787536692930";

struct Options {
    scenario: String,
    concurrency: usize,
    requests: usize,
    seconds: u64,
    streams: usize,
    /// Questions per conversation in `chat` before a new one is opened.
    questions: usize,
    /// Print the side-by-side table.
    compare: bool,
    database_url: Option<String>,
    llm: Option<String>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        scenario: args.next().unwrap_or_else(|| "logins".to_owned()),
        concurrency: 16,
        requests: 2000,
        seconds: 60,
        streams: 200,
        questions: 20,
        compare: false,
        database_url: None,
        llm: None,
    };
    while let Some(flag) = args.next() {
        if flag == "--compare" {
            options.compare = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--concurrency" => options.concurrency = value.parse()?,
            "--requests" => options.requests = value.parse()?,
            "--seconds" => options.seconds = value.parse()?,
            "--streams" => options.streams = value.parse()?,
            "--questions" => options.questions = value.parse()?,
            "--database-url" => options.database_url = Some(value),
            "--llm" => options.llm = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

fn temp_db() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("refbook-load-{}", std::process::id()));
    let url = format!("sqlite://{}", dir.join("load.db").display());
    (dir, url)
}

fn config(options: &Options, database_url: String) -> Config {
    Config {
        database_url: options.database_url.clone().unwrap_or(database_url),
        login_rate_per_min: 0,
        chat_rate_per_min: 0,
        max_concurrent_generations: 1000,
        llm_base_url: options.llm.clone().unwrap_or_default(),
        llm_api_key: options
            .llm
            .as_ref()
            .map(|_| refbook_core::config::Secret::new("sk-load")),
        book_sources: vec!["openlibrary".into()],
        ..Config::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let (dir, url) = temp_db();
    let result = match options.scenario.as_str() {
        "logins" => {
            let server = Server::start(None, options.database_url.as_deref()).await?;
            logins(&server.base, &options).await?;
            server.finish("logins").await
        }
        "books" => {
            let server = Server::start(None, options.database_url.as_deref()).await?;
            books(&server.base, &options).await?;
            server.finish("books").await
        }
        "chat" => chat(&options).await,
        "serve" => serve(&options, url).await,
        other => Err(anyhow::anyhow!(
            "unknown scenario {other} (try: logins, books, chat)"
        )),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn build(config: Config) -> anyhow::Result<Refbook> {
    Refbook::builder(config)
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("{e}: {}", e.cause_chain()))
}

/// Puts the one book of the load runs in the local catalogue (no network needed).
async fn seed_catalogue(refbook: &Refbook) -> anyhow::Result<()> {
    let csv = format!(
        "isbn,title,authors,introduction\n{ISBN},三体,刘慈欣,文化大革命如火如荼进行的同时……\n"
    );
    let entries = refbook_core::books::parse_catalog(&csv, refbook_core::books::CatalogFormat::Csv)
        .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    refbook
        .books()
        .import_catalog(entries)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Many clients reading one stored (cached) book.
async fn books(base: &str, options: &Options) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let (token, _) = user(&client, base, "bookreader").await?;
    let url = format!("{base}/api/books/{ISBN}/");
    let (latencies, failures, elapsed) = run_workers(options, move |client| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let started = Instant::now();
            let ok = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (ok, started.elapsed())
        }
    })
    .await?;
    report(
        "cached book lookups",
        &latencies,
        failures,
        elapsed,
        options.concurrency,
    );
    Ok(())
}

/// The child process of `chat`: a server whose only book is in the catalogue.
async fn serve(options: &Options, url: String) -> anyhow::Result<()> {
    let refbook = build(config(options, url)).await?;
    seed_catalogue(&refbook).await?;
    let server = RunningServer::start(refbook, "127.0.0.1:0".parse()?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("listening {}", server.url());
    // Serve until the parent closes our stdin.
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = stdin.next_line().await {}
    server.stop().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Many clients logging in to one account at once.
async fn logins(base: &str, options: &Options) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let register = client
        .post(format!("{base}/api/auth/register/"))
        .json(&json!({"username": "loaduser", "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(
        register.status().is_success(),
        "register: {}",
        register.status()
    );
    let url = format!("{base}/api/auth/login/");
    let body = json!({"username": "loaduser", "password": PASSWORD});
    let (latencies, failures, elapsed) = run_workers(options, move |client| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            let started = Instant::now();
            let ok = client
                .post(&url)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (ok, started.elapsed())
        }
    })
    .await?;
    report("logins", &latencies, failures, elapsed, options.concurrency);
    Ok(())
}

/// Prints one run's throughput and latency.
fn report(label: &str, latencies: &Latencies, failures: usize, elapsed: f64, clients: usize) {
    println!(
        "{label}: {} in {elapsed:.1}s = {:.1}/s with {clients} clients, {failures} failed; latency {}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        latencies.summary()
    );
}

/// Runs `options.requests` calls of `one` on `options.concurrency` workers (bounded by
/// `options.seconds`): latencies, failures, seconds taken.
async fn run_workers<F, Fut>(options: &Options, one: F) -> anyhow::Result<(Latencies, usize, f64)>
where
    F: Fn(reqwest::Client) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (bool, Duration)> + Send,
{
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let remaining = Arc::new(AtomicUsize::new(options.requests));
    let started = Instant::now();
    let workers: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let (client, remaining, one) = (client.clone(), remaining.clone(), one.clone());
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut failures = 0usize;
                while Instant::now() < deadline
                    && remaining
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                {
                    let (ok, took) = one(client.clone()).await;
                    latencies.push(took);
                    failures += usize::from(!ok);
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut all = Latencies::default();
    let mut failures = 0;
    for worker in workers {
        let (latencies, failed) = worker.await?;
        all.extend(latencies);
        failures += failed;
    }
    Ok((all, failures, started.elapsed().as_secs_f64()))
}

/// Whether `bytes` hold a content delta with text: the role chunk has `"content":""`, a
/// real token has text after the quote.
fn has_token(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":\"";
    bytes
        .windows(KEY.len() + 1)
        .any(|w| w.starts_with(KEY) && w[KEY.len()] != b'"')
}

/// Time from sending `request` to the first SSE event carrying content text, and whether
/// the stream then ended with `[DONE]`. Each chunk is looked at once (the load generator
/// shares the cores with the server: it must stay cheap).
async fn first_token(request: reqwest::RequestBuilder) -> (bool, Duration, Duration) {
    const DONE: &[u8] = b"data: [DONE]\n\n";
    let started = Instant::now();
    let Ok(response) = request.send().await else {
        return (false, started.elapsed(), started.elapsed());
    };
    if !response.status().is_success() {
        return (false, started.elapsed(), started.elapsed());
    }
    let mut body = response.bytes_stream();
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    let mut first = None;
    while let Some(Ok(chunk)) = body.next().await {
        tail.extend_from_slice(&chunk);
        if first.is_none() && has_token(&tail) {
            first = Some(started.elapsed());
        }
        // Keep only what a split marker or the end could straddle.
        let keep = tail.len().min(32);
        tail.drain(..tail.len() - keep);
    }
    let ok = tail.ends_with(DONE);
    (
        ok,
        first.unwrap_or_else(|| started.elapsed()),
        started.elapsed(),
    )
}

/// A user with a conversation: `(token, conversation id)`.
async fn user(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<(String, i64)> {
    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/register/"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("token")?.to_owned();
    let conversation: serde_json::Value = client
        .post(format!("{base}/api/conversations/"))
        .bearer_auth(&token)
        .json(&json!({"isbn": ISBN}))
        .send()
        .await?
        .json()
        .await?;
    Ok((
        token,
        conversation["id"].as_i64().context("conversation id")?,
    ))
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The server under test, as a child process (`serve`).
struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
}

impl Server {
    /// Starts `serve` (with the mock model at `llm`, if any) and waits for its address.
    async fn start(llm: Option<&str>, database_url: Option<&str>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut command = tokio::process::Command::new(exe);
        command.arg("serve");
        if let Some(llm) = llm {
            command.args(["--llm", llm]);
        }
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("server pid")?;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
        let base = loop {
            let line = lines.next_line().await?.context("server exited")?;
            if let Some(url) = line.strip_prefix("listening ") {
                break url.to_owned();
            }
        };
        Ok(Self { child, pid, base })
    }

    /// Reports the server's RSS after `scenario` (settled for a moment) and stops it.
    async fn finish(mut self, scenario: &str) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_kib(self.pid).context("server RSS")?;
        println!("server RSS after {scenario}: {:.1} MB", rss as f64 / 1024.0);
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        Ok(())
    }
}

/// One chat client's state: its user, its conversation and how many questions it asked
/// there (a new conversation after `questions`).
struct Asker {
    token: String,
    conversation: i64,
    asked: usize,
}

impl Asker {
    async fn new(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<Self> {
        let (token, conversation) = user(client, base, name).await?;
        Ok(Self {
            token,
            conversation,
            asked: 0,
        })
    }

    /// Asks once (after opening a fresh conversation when this one is full): whether the
    /// stream completed, its time to first token and its total time.
    async fn ask(
        &mut self,
        client: &reqwest::Client,
        base: &str,
        questions: usize,
    ) -> (bool, Duration, Duration) {
        if self.asked >= questions {
            let created = client
                .post(format!("{base}/api/conversations/"))
                .bearer_auth(&self.token)
                .json(&json!({"isbn": ISBN}))
                .send()
                .await;
            let id = match created {
                Ok(response) => response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_i64()),
                Err(_) => None,
            };
            let Some(id) = id else {
                return (false, Duration::ZERO, Duration::ZERO);
            };
            self.conversation = id;
            self.asked = 0;
        }
        self.asked += 1;
        let request = client
            .post(format!(
                "{base}/api/conversations/{}/messages/",
                self.conversation
            ))
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream")
            .json(&json!({"content": "作者是谁？"}));
        first_token(request).await
    }
}

/// What one chat run measured.
struct ChatRun {
    totals: Latencies,
    ttft: Latencies,
    failures: usize,
    elapsed: f64,
}

impl ChatRun {
    fn per_second(&self) -> f64 {
        self.totals.len() as f64 / self.elapsed
    }
}

/// `requests` chats on `clients` concurrent workers; `one(worker, client)` runs one.
async fn drive<F, Fut>(clients: usize, requests: usize, seconds: u64, one: F) -> ChatRun
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (bool, Duration, Duration)> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let remaining = Arc::new(AtomicUsize::new(requests));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (remaining, one) = (remaining.clone(), one.clone());
            tokio::spawn(async move {
                let (mut totals, mut ttft, mut failures) =
                    (Latencies::default(), Latencies::default(), 0usize);
                while Instant::now() < deadline
                    && remaining
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                {
                    let (ok, first, total) = one(worker).await;
                    if ok {
                        totals.push(total);
                        ttft.push(first);
                    } else {
                        failures += 1;
                    }
                }
                (totals, ttft, failures)
            })
        })
        .collect();
    let mut run = ChatRun {
        totals: Latencies::default(),
        ttft: Latencies::default(),
        failures: 0,
        elapsed: 0.0,
    };
    for worker in workers {
        if let Ok((totals, ttft, failures)) = worker.await {
            run.totals.extend(totals);
            run.ttft.extend(ttft);
            run.failures += failures;
        }
    }
    run.elapsed = started.elapsed().as_secs_f64();
    run
}

/// Full chats against the mock model directly, `clients` at once.
async fn direct(llm: &str, clients: usize, requests: usize, seconds: u64) -> ChatRun {
    let client = reqwest::Client::new();
    let url = format!("{llm}/chat/completions");
    drive(clients, requests, seconds, move |_| {
        let request = client.post(url.clone()).json(
            &json!({"messages": [{"role": "user", "content": "作者是谁？"}], "stream": true}),
        );
        first_token(request)
    })
    .await
}

/// Full chats through Refbook, `clients` users at once, each asking `questions` per
/// conversation.
async fn through(
    base: &str,
    clients: usize,
    requests: usize,
    options: &Options,
    tag: &str,
) -> anyhow::Result<ChatRun> {
    let client = reqwest::Client::new();
    let mut askers = Vec::new();
    for i in 0..clients {
        let asker = Asker::new(&client, base, &format!("{tag}{i}")).await?;
        askers.push(Arc::new(tokio::sync::Mutex::new(asker)));
    }
    let (base, questions) = (base.to_owned(), options.questions);
    Ok(drive(clients, requests, options.seconds, move |worker| {
        let (client, base, asker) = (client.clone(), base.clone(), askers[worker].clone());
        async move { asker.lock().await.ask(&client, &base, questions).await }
    })
    .await)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn chat(options: &Options) -> anyhow::Result<()> {
    // The upstream: a role chunk, 50 content chunks, usage, [DONE]; no delay, one write.
    let fast = FastMock::start(50).await?;
    let server = Server::start(Some(&fast.url()), options.database_url.as_deref()).await?;
    let (pid, base) = (server.pid, server.base.clone());
    let clients = options.concurrency;
    const TTFT_CLIENTS: usize = 8;
    let ttft_requests = options.requests.min(2000);

    // Side by side, in one run: the mock called directly, then through Refbook.
    let direct_full = direct(&fast.url(), clients, options.requests, options.seconds).await;
    let direct_ttft = direct(&fast.url(), TTFT_CLIENTS, ttft_requests, options.seconds).await;
    let refbook_ttft = through(&base, TTFT_CLIENTS, ttft_requests, options, "ttft").await?;
    let refbook_full = through(&base, clients, options.requests, options, "load").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_chat = rss_kib(pid).context("server RSS")?;

    println!(
        "mock directly, {clients} clients: {:.0} full chats/s, {} failed; chat {}",
        direct_full.per_second(),
        direct_full.failures,
        direct_full.totals.summary()
    );
    println!(
        "Refbook, {clients} clients, {} questions per conversation: {:.0} full chats/s, {} failed; chat {}",
        options.questions,
        refbook_full.per_second(),
        refbook_full.failures,
        refbook_full.totals.summary()
    );
    println!(
        "time to first token, {TTFT_CLIENTS} clients, mock directly: {}",
        direct_ttft.ttft.summary()
    );
    println!(
        "time to first token, {TTFT_CLIENTS} clients, through Refbook: {}",
        refbook_ttft.ttft.summary()
    );
    let added = |p: f64| ms(refbook_ttft.ttft.percentile(p)) - ms(direct_ttft.ttft.percentile(p));
    println!(
        "added by Refbook ({TTFT_CLIENTS} clients): p50 {:.2}ms, p99 {:.2}ms",
        added(50.0),
        added(99.0)
    );
    println!("server RSS after chat: {:.1} MB", rss_chat as f64 / 1024.0);
    if options.compare {
        println!();
        println!("| | mock model called directly | Refbook |");
        println!("|---|---|---|");
        println!(
            "| full streamed chats/s, {clients} clients | {:.0} | {:.0} |",
            direct_full.per_second(),
            refbook_full.per_second()
        );
        println!(
            "| time to first token, {TTFT_CLIENTS} clients | p50 {:.2} ms, p99 {:.2} ms | p50 {:.2} ms, p99 {:.2} ms |",
            ms(direct_ttft.ttft.percentile(50.0)),
            ms(direct_ttft.ttft.percentile(99.0)),
            ms(refbook_ttft.ttft.percentile(50.0)),
            ms(refbook_ttft.ttft.percentile(99.0))
        );
        println!(
            "| added to the first token | – | p50 {:.2} ms, p99 {:.2} ms |",
            added(50.0),
            added(99.0)
        );
        println!(
            "| server RSS after the run | – | {:.0} MB |",
            rss_chat as f64 / 1024.0
        );
    }
    if options.streams == 0 {
        return server.finish("chat").await;
    }

    // Memory per open stream: `streams` replies held open by a slow upstream (a second
    // server, scripted to hold its replies).
    drop(server);
    let llm = MockLlm::start().await;
    let server = Server::start(Some(&llm.url()), options.database_url.as_deref()).await?;
    let (pid, base) = (server.pid, server.base.clone());
    let client = reqwest::Client::new();
    let mut hold = vec![MockReply::content("开始")];
    hold.push(Step::Sleep(Duration::from_secs(20)));
    hold.push(Step::Done);
    llm.set_fallback(MockReply::steps(hold));
    let mut holders = Vec::new();
    for i in 0..options.streams {
        holders.push(user(&client, &base, &format!("hold{i}")).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid).context("server RSS")?;
    let mut open = Vec::new();
    for (token, id) in holders {
        let response = client
            .post(format!("{base}/api/conversations/{id}/messages/"))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .json(&json!({"content": "慢慢说"}))
            .send()
            .await?;
        let mut body = response.bytes_stream();
        body.next().await; // the first event arrived: the stream is open
        open.push(body);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid).context("server RSS")?;
    println!(
        "memory: {} open streams took the server from {} KiB to {} KiB RSS = {:.1} KiB per open stream (buffer, task, connection)",
        open.len(),
        before,
        after,
        (after.saturating_sub(before)) as f64 / open.len().max(1) as f64
    );
    drop(open);
    server.finish("open streams").await
}
