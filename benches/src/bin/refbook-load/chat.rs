//! The `chat` scenario: full chats against a fast local mock upstream, side by side with
//! the mock called directly; the time to first token Refbook adds; memory per open stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use refbook_benches::fast_mock::FastMock;
use refbook_benches::latency::Latencies;
use serde_json::json;

use crate::server::{rss_kib, user, Server};
use crate::{Options, ISBN};

/// Whether `bytes` hold a content delta with text: the role chunk has `"content":""`, a
/// real token has text after the quote.
pub(crate) fn has_token(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":\"";
    bytes
        .windows(KEY.len() + 1)
        .any(|w| w.starts_with(KEY) && w[KEY.len()] != b'"')
}

/// Time from sending `request` to the first SSE event carrying content text, and whether
/// the stream then ended with `[DONE]`. Each chunk is looked at once (the load generator
/// shares the cores with the server: it must stay cheap).
pub(crate) async fn first_token(request: reqwest::RequestBuilder) -> (bool, Duration, Duration) {
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

/// One chat client's state: its user, its conversation and how many questions it asked
/// there (a new conversation after `questions`).
pub(crate) struct Asker {
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
pub(crate) struct ChatRun {
    pub(crate) totals: Latencies,
    pub(crate) ttft: Latencies,
    pub(crate) failures: usize,
    elapsed: f64,
}

impl ChatRun {
    /// Full chats per second.
    pub(crate) fn per_second(&self) -> f64 {
        self.totals.len() as f64 / self.elapsed
    }
}

/// `requests` chats on `clients` concurrent workers; `one(worker, client)` runs one.
pub(crate) async fn drive<F, Fut>(clients: usize, requests: usize, seconds: u64, one: F) -> ChatRun
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
pub(crate) async fn direct(llm: &str, clients: usize, requests: usize, seconds: u64) -> ChatRun {
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
/// conversation; client `i` talks to `bases[i % bases.len()]` (instances behind a
/// round-robin balancer).
pub(crate) async fn through(
    bases: &[String],
    clients: usize,
    requests: usize,
    options: &Options,
    tag: &str,
) -> anyhow::Result<ChatRun> {
    let client = reqwest::Client::new();
    let mut askers = Vec::new();
    for i in 0..clients {
        let base = bases[i % bases.len()].clone();
        let asker = Asker::new(&client, &base, &format!("{tag}{i}")).await?;
        askers.push((base, Arc::new(tokio::sync::Mutex::new(asker))));
    }
    let questions = options.questions;
    Ok(drive(clients, requests, options.seconds, move |worker| {
        let (client, (base, asker)) = (client.clone(), askers[worker].clone());
        async move { asker.lock().await.ask(&client, &base, questions).await }
    })
    .await)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) async fn chat(options: &Options) -> anyhow::Result<()> {
    // The upstream: a role chunk, 50 content chunks, usage, [DONE]; no delay, one write.
    let fast = FastMock::start(50).await?;
    let server = Server::start(Some(&fast.url()), options).await?;
    let (pid, base) = (server.pid, server.base.clone());
    let clients = options.concurrency;
    const TTFT_CLIENTS: usize = 8;
    let ttft_requests = options.requests.min(2000);

    // Side by side, in one run: the mock called directly, then through Refbook.
    let direct_full = direct(&fast.url(), clients, options.requests, options.seconds).await;
    let direct_ttft = direct(&fast.url(), TTFT_CLIENTS, ttft_requests, options.seconds).await;
    let bases = [base];
    let refbook_ttft = through(&bases, TTFT_CLIENTS, ttft_requests, options, "ttft").await?;
    let refbook_full = through(&bases, clients, options.requests, options, "load").await?;
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
    // mock that holds its replies open after the first chunk).
    drop(server);
    let held = FastMock::start_holding(Duration::from_secs(20)).await?;
    let server = Server::start(Some(&held.url()), options).await?;
    let (pid, base) = (server.pid, server.base.clone());
    let client = reqwest::Client::new();
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
