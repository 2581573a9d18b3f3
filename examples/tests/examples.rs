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
