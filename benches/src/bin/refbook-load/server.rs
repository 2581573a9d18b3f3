//! The Refbook server a scenario runs against: this same binary (`serve`) as a child
//! process, so its memory can be read from `/proc`; and a signed-up user with a token.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::{Options, ISBN, PASSWORD};

/// A user with a conversation: `(token, conversation id)`.
pub(crate) async fn user(
    client: &reqwest::Client,
    base: &str,
    name: &str,
) -> anyhow::Result<(String, i64)> {
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

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The server under test, as a child process (`serve`).
pub(crate) struct Server {
    child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) base: String,
}

impl Server {
    /// Starts `serve` (with the mock model at `llm`, if any, and the database and Redis of
    /// `options`) and waits for its address.
    pub(crate) async fn start(llm: Option<&str>, options: &Options) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut command = tokio::process::Command::new(exe);
        command.arg("serve");
        if let Some(llm) = llm {
            command.args(["--llm", llm]);
        }
        if let Some(url) = &options.database_url {
            command.args(["--database-url", url]);
        }
        if let Some(url) = &options.redis_url {
            command.args(["--redis-url", url]);
        }
        if let Some(model) = &options.embed_model {
            command.args(["--embed-model", model]);
        }
        if let Some(file) = &options.ingest {
            command.args(["--ingest", file]);
        }
        if let Some(file) = &options.text {
            command.args(["--text", file]);
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
    pub(crate) async fn finish(mut self, scenario: &str) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_kib(self.pid).context("server RSS")?;
        println!("server RSS after {scenario}: {:.1} MB", rss as f64 / 1024.0);
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        Ok(())
    }
}
