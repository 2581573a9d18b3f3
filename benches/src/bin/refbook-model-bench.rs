//! The local model's speed: time to first token and decoding tokens per second for the
//! same question, answered greedily a few times by a GGUF model in this process (feature
//! `local-model`), and — with `--llama-server URL` — the same question streamed from
//! llama.cpp's `llama-server` serving the same file, measured the same way, the two
//! taking turns so neither gets a quieter machine.
//!
//! ```sh
//! # --no-cache-prompt: otherwise llama-server reuses the previous request's prompt cache
//! llama-server -m SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -np 1 --no-cache-prompt --port 8091 &
//! cargo run --release -p refbook-benches --features local-model --bin refbook-model-bench -- \
//!     --gguf SmolLM2-135M-Instruct.Q4_1.gguf [--threads 2] [--runs 3] [--tokens 128] \
//!     [--llama-server http://127.0.0.1:8091]
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use refbook_benches::latency::Latencies;
use refbook_core::chat::Role;
use refbook_core::llm::local::{LocalModel, LocalSettings};
use refbook_core::llm::{
    ChatModel, ChatRequest, ModelEvent, OpenAiCompatible, Priority, PromptMessage, Sampling,
    Timeouts,
};

struct Options {
    gguf: String,
    threads: usize,
    runs: usize,
    tokens: u32,
    llama_server: Option<String>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        gguf: String::new(),
        threads: 2,
        runs: 3,
        tokens: 128,
        llama_server: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--gguf" => options.gguf = value,
            "--threads" => options.threads = value.parse()?,
            "--runs" => options.runs = value.parse()?,
            "--tokens" => options.tokens = value.parse()?,
            "--llama-server" => options.llama_server = Some(value),
            other => bail!("unknown flag {other}"),
        }
    }
    if options.gguf.is_empty() {
        bail!("--gguf PATH is required");
    }
    Ok(options)
}

fn question(tokens: u32) -> ChatRequest {
    ChatRequest {
        messages: vec![
            PromptMessage {
                role: Role::System,
                content: "You are a librarian. The book: The Three-Body Problem by Liu Cixin, \
                          a science fiction novel about first contact."
                    .into(),
            },
            PromptMessage {
                role: Role::User,
                content: "Tell me about this book and why people like it.".into(),
            },
        ],
        user: "bench".into(),
        max_tokens: Some(tokens),
        sampling: Sampling {
            temperature: Some(0.0),
            ..Sampling::default()
        },
        priority: Priority::Interactive,
    }
}

/// One answer: time to the first text, then decode tokens per second.
async fn measure(model: &dyn ChatModel, tokens: u32) -> anyhow::Result<(Duration, f64, i64)> {
    let started = Instant::now();
    let mut stream = model.stream(question(tokens)).await?;
    let mut first = None;
    let (mut completion, mut pieces) = (0, 0);
    while let Some(event) = stream.next().await {
        match event? {
            ModelEvent::Content(piece) if !piece.is_empty() => {
                pieces += 1;
                first.get_or_insert_with(|| started.elapsed());
            }
            ModelEvent::Usage(usage) => completion = usage.completion_tokens,
            _ => {}
        }
    }
    // A server that reports no usage streams one token per chunk.
    if completion == 0 {
        completion = pieces;
    }
    let total = started.elapsed();
    let first = first.context("no text")?;
    let decoding = (total - first).as_secs_f64();
    let rate = (completion - 1).max(1) as f64 / decoding;
    Ok((first, rate, completion))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let loading = Instant::now();
    let model = LocalModel::load(LocalSettings {
        threads: options.threads,
        context_tokens: 2048,
        max_reply_tokens: options.tokens as usize,
        ..LocalSettings::new(&options.gguf)
    })
    .await?;
    println!(
        "loaded {} in {:.2} s ({} threads)",
        model.model_name(),
        loading.elapsed().as_secs_f64(),
        options.threads
    );
    let mut engines: Vec<(String, Box<dyn ChatModel>)> =
        vec![("refbook local model (candle)".into(), Box::new(model))];
    if let Some(url) = &options.llama_server {
        let server = OpenAiCompatible::new(
            reqwest::Client::new(),
            url,
            None,
            "local",
            Timeouts {
                connect: Duration::from_secs(10),
                first_data: Duration::from_secs(60),
                idle: Duration::from_secs(30),
            },
        );
        engines.push((format!("llama-server at {url}"), Box::new(server)));
    }
    // One answer each to warm up, then the measured runs, taking turns.
    for (_, engine) in &engines {
        measure(engine.as_ref(), 16).await?;
    }
    let mut results: Vec<(Latencies, Vec<f64>)> =
        engines.iter().map(|_| Default::default()).collect();
    for _ in 0..options.runs {
        for ((name, engine), (first_tokens, rates)) in engines.iter().zip(&mut results) {
            let (first, rate, completion) = measure(engine.as_ref(), options.tokens).await?;
            first_tokens.push(first);
            rates.push(rate);
            println!(
                "  {name}: {completion} tokens, first after {:.0} ms, then {rate:.1} tokens/s",
                first.as_secs_f64() * 1000.0
            );
        }
    }
    for ((name, _), (first_tokens, rates)) in engines.iter().zip(&mut results) {
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        println!(
            "{name}: time to first token {}; decoding median {median:.1} tokens/s ({:.1} ms/token)",
            first_tokens.summary(),
            1000.0 / median,
        );
    }
    println!(
        "this process's RSS (the local model loaded): {} MB",
        rss_mb()
    );
    Ok(())
}

/// This process's resident memory.
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
