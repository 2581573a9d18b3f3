//! Running the binary with a test environment.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use wiremock::MockServer;

/// What a run printed and how it ended.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `refbook-cli args…` against `database_url`, with every book source on `books` and
/// `stdin` fed in.
pub async fn cli(
    database_url: &str,
    books: &MockServer,
    args: &[&str],
    stdin: &str,
    extra_env: &[(&str, &str)],
) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_refbook-cli"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("LANG", "en_US.UTF-8")
        .env("REFBOOK_DATABASE_URL", database_url)
        .env("REFBOOK_DOUBAN_BASE_URL", books.uri())
        .env("REFBOOK_OPENLIBRARY_BASE_URL", books.uri())
        .env("REFBOOK_GOOGLEBOOKS_BASE_URL", books.uri())
        .env("REFBOOK_BOOK_SOURCE_TIMEOUT_SECS", "2")
        // Tests never download: keyword search only unless a test names a model folder.
        .env("REFBOOK_EMBED_MODEL", "off")
        // Guides would ask the mock model too; the tests that want one turn them on.
        .env("REFBOOK_GUIDE", "off")
        // The default local model is never fetched from the internet in a test: its hub is
        // a closed local port unless a test serves one, and downloads stay in a temp folder.
        .env(
            "REFBOOK_HF_ENDPOINT",
            refbook_core::testing::unreachable_hub(),
        )
        .env(
            "REFBOOK_LOCAL_MODEL_CACHE",
            std::env::temp_dir().join(format!("refbook-cli-models-{}", uuid_like())),
        )
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn refbook-cli");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `text` to `name` in a fresh temporary folder.
pub fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("refbook-cli-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// Asserts a clean failure: non-zero, one `error:` line, no panic.
#[track_caller]
pub fn assert_clean_failure(output: &Output, mentions: &str) {
    assert_ne!(
        output.code, 0,
        "stdout: {}\nstderr: {}",
        output.stdout, output.stderr
    );
    assert!(output.stderr.contains("error: "), "{}", output.stderr);
    assert!(
        output
            .stderr
            .to_lowercase()
            .contains(&mentions.to_lowercase()),
        "{}",
        output.stderr
    );
    assert!(
        !output.stderr.contains("panicked") && !output.stderr.contains("backtrace"),
        "{}",
        output.stderr
    );
}
