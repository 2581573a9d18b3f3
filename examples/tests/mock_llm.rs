//! The mock model program streams what an OpenAI client expects (built with the
//! `mock-llm` feature: `cargo test -p refbook-examples --features mock-llm`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

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
    let url = format!("http://127.0.0.1:{port}/chat/completions");
    let body = serde_json_body();
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(response) = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
        {
            answer = Some(response.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = answer.expect("the mock listened");
    assert!(answer.ends_with("data: [DONE]\n\n"), "{answer}");
    assert!(
        answer.contains("作者是") && answer.contains("chat.completion.chunk"),
        "{answer}"
    );
    server.kill().await.unwrap();
}

fn serde_json_body() -> String {
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"作者是谁？"}]}"#.to_owned()
}
