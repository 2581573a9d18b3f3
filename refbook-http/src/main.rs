//! The `refbook-http` binary: configuration from flags, a TOML file and `REFBOOK_*`
//! variables; then serve until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use refbook_core::Refbook;
use refbook_http::ServerConfig;

/// mimalloc, chosen by measurement (benches/README.md): glibc's allocator kept 180–450 MB
/// after the load runs (argon2's 19 MiB blocks and per-thread arenas), mimalloc keeps
/// 40–70 MB at the same or better speed; jemalloc kept less but was slower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Refbook's HTTP server. Every setting also has a REFBOOK_* environment variable.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (keys as the variables without REFBOOK_, lower case).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (REFBOOK_BIND).
    #[arg(long)]
    bind: Option<String>,
    /// sqlite://PATH or postgres://… (REFBOOK_DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
    /// Log filter (REFBOOK_LOG).
    #[arg(long)]
    log: Option<String>,
    /// Any other setting, as KEY=VALUE (e.g. --set llm_model=deepseek-chat).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut overrides: Vec<(&str, String)> = Vec::new();
    for (key, value) in [
        ("bind", &args.bind),
        ("database_url", &args.database_url),
        ("log", &args.log),
    ] {
        if let Some(value) = value {
            overrides.push((key, value.clone()));
        }
    }
    for setting in &args.settings {
        let (key, value) = setting
            .split_once('=')
            .with_context(|| format!("--set expects KEY=VALUE, got `{setting}`"))?;
        anyhow::ensure!(
            ServerConfig::default().is_key(key),
            "unknown setting `{key}` in --set"
        );
        overrides.push((key, value.to_owned()));
    }
    let ServerConfig { core, http } = ServerConfig::from_env(args.config.as_deref(), &overrides)?;
    refbook_http::telemetry::init(&http);
    let bind = http.bind;
    let metrics = refbook_http::metrics::Metrics::new();
    let refbook = refbook_http::metrics::instrument(Refbook::builder(core), &metrics)
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("{e}: {}", e.cause_chain()))
        .context("cannot start Refbook")?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (REFBOOK_BIND)"))?;
    let address = listener.local_addr().map_or(bind, |a| a);
    tracing::info!(%address, "refbook-http listening");
    // A local model downloads (once) and loads now, beside the server, so the first
    // question need not wait for it; questions asked meanwhile wait for the same load.
    let warming = refbook.clone();
    tokio::spawn(async move {
        match warming.answering().prepare_model().await {
            Ok(()) => tracing::info!(model = warming.answering().model_name(), "model ready"),
            Err(err) => tracing::error!(error = %err, "the model is not ready"),
        }
    });
    refbook_http::serve_with(
        listener,
        refbook,
        http,
        metrics,
        refbook_http::shutdown_signal(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!("stopped");
    Ok(())
}
