//! Load runs against a real Refbook server on loopback, bounded in requests and time.
//!
//! ```text
//! cargo run --release -p refbook-benches --bin refbook-load -- logins [--concurrency N] [--requests N]
//! cargo run --release -p refbook-benches --bin refbook-load -- books [--concurrency N] [--requests N]
//! cargo run --release -p refbook-benches --bin refbook-load -- chat [--concurrency N] [--requests N] [--questions N] [--streams N] [--compare] [--text FILE]
//!     [--embed-model FOLDER] [--ingest FILE]   (index FILE with the embedder while the load runs)
//! cargo run --release -p refbook-benches --bin refbook-load -- instances --database-url postgres://… --redis-url redis://… [--concurrency N] [--requests N]
//! ```
//!
//! Every scenario starts the server as a child process (this same binary, `serve`), so its
//! memory can be read from `/proc`: each reports the server's RSS after the run. `logins`
//! (one account, many clients), `books` (cached lookups of a stored book) and `chat`
//! (against a fast local mock OpenAI-compatible upstream: full chats per second, the time
//! to first token the server adds over calling the mock directly, memory per open stream);
//! `instances` (the same chats with Redis, against one instance and then two instances on
//! one database, the load spread over both, beside the mock called directly).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use refbook_benches::latency::Latencies;
use refbook_core::{Config, Refbook};
use refbook_http::{RunningServer, ServerConfig};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

mod chat;
mod instances;
mod server;

use chat::chat;
use server::{user, Server};

/// The same allocator as the `refbook-http` binary, so `serve` measures what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PASSWORD: &str = "load-test-password";
const ISBN: &str = "9787536692930";
/// The book whose text `--ingest` indexes beside the load (any valid ISBN: a text needs
/// no catalogue entry).
const INGESTED_ISBN: &str = "9780141439518";

#[derive(Clone)]
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
    redis_url: Option<String>,
    /// The book's own text (`.txt`, `.md`, `.epub`): answers are then grounded in it.
    text: Option<String>,
    /// The server's embedder (`REFBOOK_EMBED_MODEL`: a model folder); unset: `off`.
    embed_model: Option<String>,
    /// A text the server indexes (another book's) while the load runs.
    ingest: Option<String>,
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
        redis_url: None,
        text: None,
        embed_model: None,
        ingest: None,
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
            "--redis-url" => options.redis_url = Some(value),
            "--text" => options.text = Some(value),
            "--embed-model" => options.embed_model = Some(value),
            "--ingest" => options.ingest = Some(value),
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

/// The server under load: no rate limits, room for every client's replies at once.
fn config(options: &Options, database_url: String) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.login_rate_per_min = 0;
    config.http.chat_rate_per_min = 0;
    let core = &mut config.core;
    core.database.url = options.database_url.clone().unwrap_or(database_url);
    core.chat.max_concurrent_generations = 1000;
    core.llm.base_url = options.llm.clone().unwrap_or_default();
    core.llm.api_key = options
        .llm
        .as_ref()
        .map(|_| refbook_core::config::Secret::new("sk-load"));
    core.books.sources = vec!["openlibrary".into()];
    core.books.embed_model = Some(options.embed_model.clone().unwrap_or_else(|| "off".into()));
    core.books.guide = refbook_core::config::GuideMode::Off;
    core.cluster.url = options
        .redis_url
        .as_ref()
        .map(refbook_core::config::Secret::new);
    config
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let (dir, url) = temp_db();
    let result = match options.scenario.as_str() {
        "logins" => {
            let server = Server::start(None, &options).await?;
            logins(&server.base, &options).await?;
            server.finish("logins").await
        }
        "books" => {
            let server = Server::start(None, &options).await?;
            books(&server.base, &options).await?;
            server.finish("books").await
        }
        "chat" => chat(&options).await,
        "instances" => instances::instances(&options).await,
        "serve" => serve(&options, url).await,
        other => Err(anyhow::anyhow!(
            "unknown scenario {other} (try: logins, books, chat, instances)"
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
        timed(client.get(&url).bearer_auth(&token))
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
    let ServerConfig { core, http } = config(options, url);
    let refbook = build(core).await?;
    seed_catalogue(&refbook).await?;
    if let Some(file) = &options.text {
        let info = add_text(&refbook, ISBN, file).await?;
        eprintln!(
            "the book's text: {} characters, {} passages",
            info.chars, info.chunks
        );
    }
    let server =
        RunningServer::start_with(refbook.clone(), http, refbook_http::metrics::Metrics::new())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(file) = &options.ingest {
        ingest_beside(&refbook, file).await?;
    }
    println!("listening {}", server.url());
    // Serve until the parent closes our stdin.
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = stdin.next_line().await {}
    server.stop().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Stores `file` as the library's text of `isbn`.
async fn add_text(
    refbook: &refbook_core::Refbook,
    isbn: &str,
    file: &str,
) -> anyhow::Result<refbook_core::domain::BookTextInfo> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let added = refbook
        .books()
        .texts()
        .add(
            &refbook_core::books::Isbn::parse(isbn)?,
            refbook_core::domain::TextScope::Library,
            refbook_core::domain::TextFormat::of_file_name(file),
            bytes,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(added.info)
}

/// Stores `file` as another book's text; the server indexes it in the background while
/// the load runs, and says on stderr when it is done (or how far it got).
async fn ingest_beside(refbook: &refbook_core::Refbook, file: &str) -> anyhow::Result<()> {
    let isbn = refbook_core::books::Isbn::parse(INGESTED_ISBN)?;
    let started = std::time::Instant::now();
    let info = add_text(refbook, INGESTED_ISBN, file).await?;
    eprintln!(
        "indexing beside the load: {} characters, {} passages",
        info.chars, info.chunks
    );
    let refbook = refbook.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let texts = refbook.books().texts();
            let Ok(Some(info)) = texts
                .info(&isbn, refbook_core::domain::TextScope::Library)
                .await
            else {
                return;
            };
            if info.state != refbook_core::domain::TextState::Indexing {
                eprintln!(
                    "indexed beside the load in {:.1} s ({} vectors)",
                    started.elapsed().as_secs_f64(),
                    info.vectors
                );
                return;
            }
            eprintln!(
                "indexing beside the load: {} of {} passages",
                info.vectors, info.chunks
            );
        }
    });
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
    let (latencies, failures, elapsed) =
        run_workers(options, move |client| timed(client.post(&url).json(&body))).await?;
    report("logins", &latencies, failures, elapsed, options.concurrency);
    Ok(())
}

/// Prints one run's throughput and latency.
/// Sends `request`: whether it succeeded (2xx) and how long it took.
async fn timed(request: reqwest::RequestBuilder) -> (bool, Duration) {
    let started = Instant::now();
    let ok = request.send().await.is_ok_and(|r| r.status().is_success());
    (ok, started.elapsed())
}

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
