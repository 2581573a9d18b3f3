//! The examples run and do what their docs say.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

#[test]
fn custom_seams_answers_from_its_own_source_and_model() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custom_seams"))
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("《小王子》 by 圣埃克苏佩里"), "{stdout}");
    assert!(
        stdout.contains("本质的东西，用眼睛是看不见的。"),
        "{stdout}"
    );
}

#[tokio::test]
async fn mock_llm_streams_an_openai_compatible_answer() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_mock_llm"))
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest_like_post(port).await;
    assert!(client.contains("data: [DONE]"), "{client}");
    assert!(client.contains("你问的是"), "{client}");
    server.kill().await.unwrap();
}

/// POSTs a chat request with a plain TCP client (no extra dependency), retrying while the
/// server starts; returns the raw response.
async fn reqwest_like_post(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"作者是谁？"}]}"#;
    for _ in 0..100 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let request = format!(
                "POST /chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            stream.read_to_end(&mut out).await.unwrap();
            return String::from_utf8_lossy(&out).into_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the mock never listened");
}
