//! The local model's speed, side by side with llama.cpp's `llama-server` serving the same
//! GGUF file (`--llama-server URL`), the engines taking turns so neither gets a quieter
//! machine:
//!
//! - one question answered greedily a few times: time to first token, decoding rate;
//! - prefill: the first token after prompts of 128, 512, 1,024 and 2,048 tokens;
//! - a conversation of eight questions (replies up to 64 tokens), each turn's first token,
//!   with the prefix cache on and off (llama-server with its prompt cache on);
//! - a grounded question (~1,500 prompt tokens) cold, then repeated, beside a bare one;
//! - a JSON answer (`json_object`, each token chosen among those that keep it JSON)
//!   beside the same question unconstrained: decoding rate (the local engine alone);
//! - a reader's first token while a book's text is embedded on the same cores
//!   (`--embed-model DIR --book FILE.md`): idle, indexing that waits for readers (the
//!   server's wiring), indexing that does not (the local engine alone);
//! - the process's RSS with the prefix cache filled to its bound.
//!
//! ```sh
//! llama-server -m SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -c 4096 -np 1 --port 8091 &
//! cargo run --release -p refbook-benches --features local-model --bin refbook-model-bench -- \
//!     --gguf SmolLM2-135M-Instruct.Q4_1.gguf [--threads 2] [--runs 3] [--tokens 128] \
//!     [--cache-mb 256] [--llama-server http://127.0.0.1:8091] \
//!     [--embed-model DIR --book FILE.md] \
//!     [--sections decoding,prefill,conversation,grounded,json,indexing,fill]
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use refbook_benches::beside_indexing;
use refbook_benches::latency::Latencies;
use refbook_benches::model_runs;
use refbook_core::foreground::Foreground;
use refbook_core::llm::local::{LocalModel, LocalSettings};
use refbook_core::llm::{ChatModel, OpenAiCompatible, Timeouts};

/// The server's allocator (refbook-http), so the RSS reported is the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    gguf: String,
    threads: usize,
    runs: usize,
    tokens: u32,
    cache_mb: usize,
    llama_server: Option<String>,
    /// A sentence embedder's folder and a Markdown book, for the `indexing` section.
    embed_model: Option<String>,
    book: Option<String>,
    sections: Vec<String>,
}

impl Options {
    fn runs(&self, section: &str) -> bool {
        self.sections.is_empty() || self.sections.iter().any(|s| s == section)
    }
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        gguf: String::new(),
        threads: 2,
        runs: 3,
        tokens: 128,
        cache_mb: 256,
        llama_server: None,
        embed_model: None,
        book: None,
        sections: Vec::new(),
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
            "--cache-mb" => options.cache_mb = value.parse()?,
            "--llama-server" => options.llama_server = Some(value),
            "--embed-model" => options.embed_model = Some(value),
            "--book" => options.book = Some(value),
            "--sections" => options.sections = value.split(',').map(str::to_owned).collect(),
            other => bail!("unknown flag {other}"),
        }
    }
    if options.gguf.is_empty() {
        bail!("--gguf PATH is required");
    }
    Ok(options)
}

/// The local model; its readers' answers are announced to `foreground` (indexing beside
/// it waits for them).
async fn local(
    options: &Options,
    cache_mb: usize,
    foreground: Arc<Foreground>,
) -> anyhow::Result<LocalModel> {
    Ok(LocalModel::load(LocalSettings {
        threads: options.threads,
        context_tokens: 4096,
        max_reply_tokens: options.tokens.max(64) as usize,
        cache_bytes: cache_mb << 20,
        foreground,
        ..LocalSettings::new(&options.gguf)
    })
    .await?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

type Engines = Vec<(String, Box<dyn ChatModel>)>;

/// The same question, greedily, `runs` times per engine.
async fn decoding(engines: &Engines, options: &Options) -> anyhow::Result<()> {
    println!("\n## One question, {} tokens, greedy", options.tokens);
    let mut results: Vec<(Latencies, Vec<f64>)> =
        engines.iter().map(|_| Default::default()).collect();
    for run in 0..options.runs {
        for ((_, engine), (first_tokens, rates)) in engines.iter().zip(&mut results) {
            // Another conversation number each run: no prompt cache serves it.
            let request = model_runs::chat(
                &model_runs::librarian(run),
                &[("Tell me about this book and why people like it.", None)],
                options.tokens,
            );
            let (timed, _) = model_runs::measure(engine.as_ref(), request).await?;
            first_tokens.push(timed.first);
            rates.push(timed.rate);
        }
    }
    for ((name, _), (first_tokens, rates)) in engines.iter().zip(results) {
        let rate = median(rates);
        println!(
            "{name}: time to first token {}; decoding median {rate:.1} tokens/s ({:.1} ms/token)",
            first_tokens.summary(),
            1000.0 / rate,
        );
    }
    Ok(())
}

/// Prompt processing at several lengths.
async fn prefill(engines: &Engines, options: &Options) -> anyhow::Result<()> {
    println!(
        "\n## Prefill: first token after a prompt of N tokens (median of {})",
        options.runs
    );
    for length in [128, 512, 1024, 2048] {
        let mut rows: Vec<(Vec<f64>, i64)> = engines.iter().map(|_| (Vec::new(), 0)).collect();
        for run in 0..options.runs {
            for ((_, engine), (rates, tokens)) in engines.iter().zip(&mut rows) {
                let timed =
                    model_runs::prefill(engine.as_ref(), length, length * 100 + run).await?;
                *tokens = timed.prompt_tokens;
                rates.push(timed.prompt_tokens as f64 / timed.first.as_secs_f64());
            }
        }
        let line: Vec<String> = engines
            .iter()
            .zip(rows)
            .map(|((name, _), (rates, tokens))| {
                format!("{name}: {tokens} tokens at {:.0} tokens/s", median(rates))
            })
            .collect();
        println!("{length}: {}", line.join(" | "));
    }
    Ok(())
}

/// Eight questions in one conversation, each engine in turn.
async fn conversations(engines: &Engines, runs: usize) -> anyhow::Result<()> {
    println!("\n## A conversation of eight questions, replies up to 64 tokens (median of {runs})");
    let mut firsts: Vec<Vec<Vec<f64>>> = engines.iter().map(|_| vec![Vec::new(); 8]).collect();
    let mut prompts: Vec<Vec<i64>> = engines.iter().map(|_| vec![0; 8]).collect();
    for run in 0..runs {
        for (e, (_, engine)) in engines.iter().enumerate() {
            let turns = model_runs::conversation(engine.as_ref(), 500 + run, 64).await?;
            for (t, timed) in turns.iter().enumerate() {
                firsts[e][t].push(ms(timed.first));
                prompts[e][t] = timed.prompt_tokens;
            }
        }
    }
    for (e, (name, _)) in engines.iter().enumerate() {
        let medians: Vec<f64> = firsts[e].iter().map(|f| median(f.clone())).collect();
        let turns: Vec<String> = medians
            .iter()
            .zip(&prompts[e])
            .enumerate()
            .map(|(t, (first, tokens))| format!("{}: {tokens} tok {first:.0} ms", t + 1))
            .collect();
        println!("{name}: {}", turns.join(", "));
        println!(
            "  turn 8 / turn 1: {:.2}x",
            medians[7] / medians[0].max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}

/// A grounded question cold, the same again, and a bare question.
async fn grounded(engines: &Engines, runs: usize) -> anyhow::Result<()> {
    println!("\n## A grounded question (~1,500 prompt tokens), median of {runs}");
    for (name, engine) in engines {
        let (mut cold, mut repeated, mut bare) = (Vec::new(), Vec::new(), Vec::new());
        let mut tokens = 0;
        for run in 0..runs {
            let question = "What happens in the letter?";
            let request = model_runs::grounded(900 + run, 1300, question);
            let (first, _) = model_runs::measure(engine.as_ref(), request.clone()).await?;
            let (again, _) = model_runs::measure(engine.as_ref(), request).await?;
            let bare_request =
                model_runs::chat(&model_runs::librarian(950 + run), &[(question, None)], 64);
            let (plain, _) = model_runs::measure(engine.as_ref(), bare_request).await?;
            tokens = first.prompt_tokens;
            cold.push(ms(first.first));
            repeated.push(ms(again.first));
            bare.push(ms(plain.first));
        }
        let (cold, repeated, bare) = (median(cold), median(repeated), median(bare));
        println!(
            "{name}: {tokens} prompt tokens: first {cold:.0} ms, repeated {repeated:.0} ms; \
             a bare question {bare:.0} ms (repeated / bare {:.2}x)",
            repeated / bare.max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}

/// Fills the prefix cache with distinct prompts until the next would evict one; gives
/// the cache's size.
async fn fill(model: &LocalModel) -> anyhow::Result<u64> {
    let report = || model.local_report().context("a local report");
    // Prompts of ~1,700 tokens until one no longer adds an entry (it evicted one).
    for seed in 0..64 {
        let before = report()?.cache_entries;
        model_runs::prefill(model, 1000, 10_000 + seed).await?;
        if report()?.cache_entries <= before {
            break;
        }
    }
    Ok(report()?.cache_bytes)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let loading = Instant::now();
    // The embedder source indexing waits through (the server's wiring) and one it does not.
    let indexing = match (&options.embed_model, &options.book) {
        (Some(folder), Some(_)) if options.runs("indexing") => Some((
            beside_indexing::embedder_source(Path::new(folder)),
            beside_indexing::embedder_source(Path::new(folder)),
        )),
        (None, _) | (_, None) if options.runs("indexing") && !options.sections.is_empty() => {
            bail!("--sections indexing needs --embed-model DIR and --book FILE.md")
        }
        _ => None,
    };
    let foreground = indexing
        .as_ref()
        .map_or_else(Foreground::new, |(linked, _)| linked.foreground().clone());
    let model = local(&options, options.cache_mb, foreground).await?;
    println!(
        "loaded {} in {:.2} s ({} threads, prefix cache {} MB); RSS {} MB",
        model.model_name(),
        loading.elapsed().as_secs_f64(),
        options.threads,
        options.cache_mb,
        rss_mb()
    );
    let mut engines: Engines = vec![("refbook (candle)".into(), Box::new(model.clone()))];
    if let Some(url) = &options.llama_server {
        let server = OpenAiCompatible::new(
            reqwest::Client::new(),
            url,
            None,
            "local",
            Timeouts {
                connect: Duration::from_secs(10),
                first_data: Duration::from_secs(120),
                idle: Duration::from_secs(30),
            },
        );
        engines.push((format!("llama-server at {url}"), Box::new(server)));
    }
    // One answer each to warm up.
    for (_, engine) in &engines {
        model_runs::measure(
            engine.as_ref(),
            model_runs::chat("Warm up.", &[("Hi", None)], 8),
        )
        .await?;
    }
    if options.runs("decoding") {
        decoding(&engines, &options).await?;
    }
    if options.runs("prefill") {
        prefill(&engines, &options).await?;
    }
    if options.runs("conversation") {
        let mut with_cold: Engines = vec![(
            "refbook, prefix cache off".into(),
            Box::new(local(&options, 0, Foreground::new()).await?),
        )];
        with_cold.append(&mut engines);
        conversations(&with_cold, options.runs).await?;
        engines = with_cold.split_off(1);
    }
    if options.runs("grounded") {
        grounded(&engines, options.runs).await?;
    }
    if options.runs("json") {
        json_answers(&model, &options).await?;
    }
    if let (Some((linked, unlinked)), Some(book)) = (indexing, &options.book) {
        beside_indexing::first_tokens_beside_indexing(
            &model,
            linked,
            unlinked,
            Path::new(book),
            options.runs,
        )
        .await?;
    }
    if !options.runs("fill") {
        return Ok(());
    }
    let held = fill(&model).await?;
    println!(
        "\nprefix cache filled: {:.1} MB held (bound {} MB); this process's RSS: {} MB",
        held as f64 / f64::from(1 << 20),
        options.cache_mb,
        rss_mb()
    );
    Ok(())
}

/// The same question answered freely and as one JSON object, taking turns, on the local
/// engine: what constrained sampling costs per token.
async fn json_answers(model: &LocalModel, options: &Options) -> anyhow::Result<()> {
    println!(
        "\n## A JSON answer (json_object) beside a free one, up to {} tokens",
        options.tokens
    );
    let question = "Describe this book as JSON with the keys title, author and themes (a list).";
    let mut rates = [Vec::new(), Vec::new()];
    let mut lengths = [Vec::new(), Vec::new()];
    for run in 0..options.runs {
        for (json, (rates, lengths)) in [false, true]
            .into_iter()
            .zip(rates.iter_mut().zip(&mut lengths))
        {
            let mut request = model_runs::chat(
                &model_runs::librarian(700 + run),
                &[(question, None)],
                options.tokens,
            );
            request.sampling.json_object = json;
            let (timed, _) = model_runs::measure(model, request).await?;
            rates.push(timed.rate);
            lengths.push(timed.completion_tokens as f64);
        }
    }
    for (name, (rates, lengths)) in ["free", "json_object"]
        .iter()
        .zip(rates.into_iter().zip(lengths))
    {
        let rate = median(rates);
        println!(
            "{name}: decoding median {rate:.1} tokens/s ({:.1} ms/token), median {:.0} tokens",
            1000.0 / rate,
            median(lengths)
        );
    }
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
