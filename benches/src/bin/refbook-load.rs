//! Load runs against a real Refbook server on loopback, bounded in requests and time.
//!
//! `cargo run --release -p refbook-benches --bin refbook-load -- logins`
//!
//! The server runs in this process (the same code as the `refbook-http` binary) on a fresh
//! SQLite file in a temporary folder, or on `--database-url`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use refbook_benches::latency::Latencies;
use refbook_core::{Config, Refbook};
use refbook_http::RunningServer;
use serde_json::json;

const PASSWORD: &str = "load-test-password";

struct Options {
    scenario: String,
    concurrency: usize,
    requests: usize,
    seconds: u64,
    database_url: Option<String>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        scenario: args.next().unwrap_or_else(|| "logins".to_owned()),
        concurrency: 16,
        requests: 2000,
        seconds: 60,
        database_url: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--concurrency" => options.concurrency = value.parse()?,
            "--requests" => options.requests = value.parse()?,
            "--seconds" => options.seconds = value.parse()?,
            "--database-url" => options.database_url = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let dir = std::env::temp_dir().join(format!("refbook-load-{}", std::process::id()));
    let config = Config {
        database_url: options
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("load.db").display())),
        login_rate_per_min: 0,
        ..Config::default()
    };
    let refbook = Refbook::builder(config)
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("{e}: {}", e.cause_chain()))?;
    let server = RunningServer::start(refbook, "127.0.0.1:0".parse()?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = match options.scenario.as_str() {
        "logins" => logins(&server.url(), &options).await,
        other => Err(anyhow::anyhow!("unknown scenario {other} (try: logins)")),
    };
    server.stop().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    result
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

    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(options.requests));
    let started = Instant::now();
    let workers: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let client = client.clone();
            let url = format!("{base}/api/auth/login/");
            let remaining = remaining.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut failures = 0usize;
                while Instant::now() < deadline
                    && remaining
                        .fetch_update(
                            std::sync::atomic::Ordering::SeqCst,
                            std::sync::atomic::Ordering::SeqCst,
                            |n| n.checked_sub(1),
                        )
                        .is_ok()
                {
                    let t = Instant::now();
                    let ok = client
                        .post(&url)
                        .json(&json!({"username": "loaduser", "password": PASSWORD}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    latencies.push(t.elapsed());
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
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "logins: {} in {:.1}s = {:.1}/s with {} clients, {} failed; latency {}",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed,
        options.concurrency,
        failures,
        all.summary()
    );
    Ok(())
}
