//! The local model's prefix cache and its waiting line, on the GGUF CI uses
//! (`REFBOOK_TEST_GGUF`, SmolLM2-135M-Instruct Q4_1; skipped without it unless
//! `REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1`): cached runs give a cold run's tokens, the cache
//! keeps its bound, background work yields to a reader (the model's own, and indexing a
//! book's text on the same cores), and a question that waits too long is refused as busy.

#![cfg(feature = "local-model")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use refbook_core::books::{BookTexts, Isbn, WorkSettings};
use refbook_core::chat::Role;
use refbook_core::config::BookSettings;
use refbook_core::domain::{TextFormat, TextScope, TextState};
use refbook_core::embed::{Embedder, EmbedderSource};
use refbook_core::llm::local::{LocalModel, LocalSettings};
use refbook_core::llm::{
    ChatModel, ChatRequest, ModelError, ModelEvent, Priority, PromptMessage, Sampling,
};
use refbook_core::store::{SqlStore, Store};
use refbook_core::testing::{TestBackend, TestDatabase};

/// The bytes one token's keys and values take in SmolLM2-135M (30 layers, 3 key/value
/// heads of 64 floats, keys and values).
const TOKEN_BYTES: usize = 30 * 2 * 3 * 64 * 4;

async fn load(cache_bytes: usize, queue_timeout: Duration) -> Option<LocalModel> {
    let path = refbook_core::testing::local_model_file()?;
    Some(
        LocalModel::load(LocalSettings {
            threads: 2,
            context_tokens: 2048,
            max_reply_tokens: 256,
            cache_bytes,
            queue_timeout,
            ..LocalSettings::new(path)
        })
        .await
        .expect("the model loads"),
    )
}

fn message(role: Role, content: &str) -> PromptMessage {
    PromptMessage {
        role,
        content: content.to_owned(),
    }
}

fn request(messages: Vec<PromptMessage>, max_tokens: u32, priority: Priority) -> ChatRequest {
    ChatRequest {
        messages,
        user: "1".into(),
        max_tokens: Some(max_tokens),
        sampling: Sampling {
            temperature: Some(0.0),
            ..Sampling::default()
        },
        priority,
        tools: None,
    }
}

fn system() -> PromptMessage {
    message(
        Role::System,
        "You are a librarian who knows the book \"Pride and Prejudice\" by Jane Austen. \
         Answer the reader's question; never make facts up.",
    )
}

/// A reply's text.
async fn answer(model: &dyn ChatModel, request: ChatRequest) -> String {
    read_all(model.stream(request).await.expect("accepted")).await
}

/// The text of a reply's stream.
async fn read_all(mut stream: refbook_core::llm::ModelStream) -> String {
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let ModelEvent::Content(piece) = event.expect("no error") {
            text.push_str(&piece);
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_runs_give_a_cold_runs_tokens_and_changed_history_is_never_reused() {
    let Some(warm) = load(256 << 20, Duration::from_secs(600)).await else {
        return;
    };
    let cold = load(0, Duration::from_secs(600)).await.unwrap();
    let questions = [
        "Who is Elizabeth Bennet?",
        "And who is Mr. Darcy?",
        "Where do they first meet?",
        "How does the book end?",
    ];
    let mut history = vec![system()];
    let mut cached_before = 0;
    for (turn, question) in questions.iter().enumerate() {
        history.push(message(Role::User, question));
        let prompt = request(history.clone(), 40, Priority::Interactive);
        let from_cache = answer(&warm, prompt.clone()).await;
        let from_scratch = answer(&cold, prompt).await;
        assert_eq!(
            from_cache,
            from_scratch,
            "turn {}: greedy tokens differ",
            turn + 1
        );
        assert!(!from_cache.trim().is_empty());
        let report = warm.local_report().unwrap();
        if turn > 0 {
            // The previous turn's prompt and reply came from the cache: only the new
            // question (and the template around it) was processed.
            let reused = report.prompt_tokens_cached - cached_before;
            assert!(reused >= 32, "turn {}: {reused} tokens reused", turn + 1);
        }
        cached_before = report.prompt_tokens_cached;
        history.push(message(Role::Assistant, &from_cache));
    }
    assert_eq!(cold.local_report().unwrap().prompt_tokens_cached, 0);
    assert_eq!(cold.local_report().unwrap().cache_entries, 0);

    // Regenerate: the same prompt again (without its last reply) reuses the prompt and
    // gives the same answer as before.
    let last_prompt = request(
        history[..history.len() - 1].to_vec(),
        40,
        Priority::Interactive,
    );
    assert_eq!(
        answer(&warm, last_prompt).await,
        history.last().unwrap().content,
        "a regenerated answer matches"
    );

    // A history with a turn deleted (or edited) is not the cached one: its answer is a
    // cold run's.
    let mut edited = history.clone();
    edited.drain(3..5); // the second question and its answer
    edited.push(message(Role::User, "Is there a wedding?"));
    let prompt = request(edited, 40, Priority::Interactive);
    let before = warm.local_report().unwrap().prompt_tokens_cached;
    let from_cache = answer(&warm, prompt.clone()).await;
    assert_eq!(
        from_cache,
        answer(&cold, prompt).await,
        "the edited history"
    );
    let reused = warm.local_report().unwrap().prompt_tokens_cached - before;
    let first_turn = history[..3].iter().map(|m| m.content.len()).sum::<usize>() as u64;
    assert!(
        reused < first_turn,
        "only the shared beginning (the first turn) can be reused: {reused} tokens"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_its_bound_and_evicts_the_least_recently_used() {
    // Room for two of these ~70-token prompts beside the answer in progress (its prompt
    // and 24 tokens of reply).
    let bound = 250 * TOKEN_BYTES;
    let Some(model) = load(bound, Duration::from_secs(600)).await else {
        return;
    };
    let topics = ["whales", "volcanoes", "trains", "tea"];
    let ask = |topic: &str| {
        request(
            vec![
                message(
                    Role::System,
                    &format!(
                        "You are an expert on {topic}. You answer questions about {topic} \
                         with one short, true sentence, and you never make facts up. If \
                         you do not know, you say so plainly and briefly."
                    ),
                ),
                message(Role::User, &format!("Tell me one fact about {topic}.")),
            ],
            24,
            Priority::Interactive,
        )
    };
    for topic in topics {
        answer(&model, ask(topic)).await;
        let report = model.local_report().unwrap();
        assert!(
            report.cache_bytes <= bound as u64,
            "{} bytes kept over a bound of {bound}",
            report.cache_bytes
        );
        assert!(report.cache_entries >= 1);
    }
    assert!(model.local_report().unwrap().cache_entries < topics.len() as u64);
    // The newest is still there (almost all of its prompt reused); the oldest is gone
    // (only the template's first tokens, shared by every prompt, are).
    let reused = |before: u64| model.local_report().unwrap().prompt_tokens_cached - before;
    let before = model.local_report().unwrap().prompt_tokens_cached;
    answer(&model, ask("tea")).await;
    let newest = reused(before);
    let before = model.local_report().unwrap().prompt_tokens_cached;
    answer(&model, ask("whales")).await;
    let oldest = reused(before);
    assert!(newest >= 32, "the newest prompt is reused: {newest}");
    assert_eq!(
        oldest, 0,
        "the oldest prompt was evicted (a shared beginning shorter than a step is not reused)"
    );
    // A prompt too big to keep beside its own answer is not kept, and the answer's
    // buffers count against the bound while it runs: asked again, nothing of it is reused.
    let long = request(
        vec![
            message(
                Role::System,
                &"The sea is wide and the ships are small. ".repeat(30),
            ),
            message(Role::User, "Tell me one fact about the sea."),
        ],
        8,
        Priority::Interactive,
    );
    answer(&model, long.clone()).await;
    let report = model.local_report().unwrap();
    assert!(report.cache_bytes <= bound as u64);
    let before = report.prompt_tokens_cached;
    answer(&model, long).await;
    assert_eq!(reused(before), 0, "the long prompt was not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_yields_to_a_readers_question() {
    let Some(model) = load(0, Duration::from_secs(600)).await else {
        return;
    };
    let counting = vec![
        system(),
        message(Role::User, "Count from 1 to 300, separated by commas."),
    ];
    let mut background = model
        .stream(request(counting, 240, Priority::Background))
        .await
        .expect("accepted");
    // The background reply is under way…
    let mut background_pieces = 0;
    while background_pieces < 3 {
        if let Some(Ok(ModelEvent::Content(piece))) = background.next().await {
            background_pieces += usize::from(!piece.is_empty());
        }
    }
    // …when a reader asks: the reader's answer is whole before the background one ends.
    let reader = {
        let model = model.clone();
        tokio::spawn(async move {
            let text = answer(
                &model,
                request(
                    vec![system(), message(Role::User, "Who is Mr. Bingley?")],
                    16,
                    Priority::Interactive,
                ),
            )
            .await;
            (text, Instant::now())
        })
    };
    let mut background_finished = None;
    while let Some(event) = background.next().await {
        if let ModelEvent::Finish(_) = event.expect("no error") {
            background_finished = Some(Instant::now());
        }
    }
    let (text, reader_finished) = reader.await.unwrap();
    assert!(!text.is_empty());
    let background_finished = background_finished.expect("the background reply finished");
    assert!(
        reader_finished < background_finished,
        "the reader's answer came first"
    );
}

/// An embedder that takes 40 ms a batch (as a small one does on these cores) and notes
/// when each batch started.
#[derive(Default)]
struct TimedEmbedder {
    started: Mutex<Vec<Instant>>,
}

impl TimedEmbedder {
    fn batches_between(&self, from: Instant, to: Instant) -> usize {
        let started = self.started.lock().unwrap();
        started.iter().filter(|at| **at > from && **at < to).count()
    }

    fn batches(&self) -> usize {
        self.started.lock().unwrap().len()
    }
}

impl Embedder for TimedEmbedder {
    fn id(&self) -> &str {
        "timed-4"
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.started.lock().unwrap().push(Instant::now());
        std::thread::sleep(Duration::from_millis(40));
        Ok(texts
            .iter()
            .map(|text| vec![text.len() as f32, 1.0, 0.0, 0.0])
            .collect())
    }

    fn known_share(&self, _text: &str) -> f32 {
        1.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexing_a_book_waits_while_the_model_answers_a_reader() {
    let Some(path) = refbook_core::testing::local_model_file() else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let embedder = Arc::new(TimedEmbedder::default());
    let source = Arc::new(EmbedderSource::provided(embedder.clone()));
    // The model announces its readers where the books' embedder looks (as a server wires
    // them).
    let model = LocalModel::load(LocalSettings {
        threads: 2,
        context_tokens: 2048,
        cache_bytes: 0,
        foreground: source.foreground().clone(),
        ..LocalSettings::new(path)
    })
    .await
    .expect("the model loads");
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(db.url()).await.unwrap());
    let texts = BookTexts::with_work_settings(
        store,
        &BookSettings::default(),
        source,
        WorkSettings {
            lease: Duration::from_secs(5),
            poll: Duration::from_millis(100),
            batch: 2,
            readers_first_for: Duration::from_secs(60),
        },
    );
    let book: String = (0..120)
        .map(|c| {
            let body: String = (0..20)
                .map(|s| format!("The heron number {c} {s} walked along the shore of the lake. "))
                .collect();
            format!("Chapter {}\n\n{body}\n\n", c + 1)
        })
        .collect();
    let isbn = Isbn::parse("9787536692930").unwrap();
    let added = texts
        .add(
            &isbn,
            TextScope::Library,
            TextFormat::Plain,
            book.into_bytes(),
        )
        .await
        .unwrap()
        .info;
    assert!(added.chunks >= 200, "{} chunks", added.chunks);
    // Indexing is under way…
    let deadline = Instant::now() + Duration::from_secs(60);
    while embedder.batches() < 3 {
        assert!(Instant::now() < deadline, "indexing never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // …when a reader asks: no batch starts until the answer is whole (one already running
    // when the question came may end).
    let asked = Instant::now();
    let text = answer(
        &model,
        request(
            vec![system(), message(Role::User, "Tell me about Mr. Bingley.")],
            64,
            Priority::Interactive,
        ),
    )
    .await;
    let answered = Instant::now();
    assert!(!text.is_empty());
    assert!(
        answered - asked > Duration::from_millis(500),
        "the answer took long enough to tell: {:?}",
        answered - asked
    );
    assert_eq!(
        embedder.batches_between(asked + Duration::from_millis(100), answered),
        0,
        "batches started while the reader was answered ({:?} after the question)",
        answered - asked
    );
    // Then indexing goes on, and ends.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let info = texts
            .info(&isbn, TextScope::Library)
            .await
            .unwrap()
            .unwrap();
        if info.state == TextState::Ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "indexing never finished: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(embedder.batches_between(answered, Instant::now()) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_that_waits_past_the_timeout_is_refused_busy() {
    let Some(model) = load(0, Duration::from_secs(1)).await else {
        return;
    };
    // A reply nobody reads holds the model once its 64 buffered pieces are full.
    let counting = vec![
        system(),
        message(Role::User, "Count from 1 to 300, separated by commas."),
    ];
    let held = model
        .stream(request(counting, 240, Priority::Interactive))
        .await
        .expect("accepted");
    let started = Instant::now();
    let refused = model
        .stream(request(
            vec![system(), message(Role::User, "Who is Jane?")],
            8,
            Priority::Interactive,
        ))
        .await;
    let waited = started.elapsed();
    assert!(
        matches!(refused, Err(ModelError::Busy(_))),
        "refused as busy, not {:?}",
        refused.err()
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let error = refbook_core::Error::from(refused.err().unwrap());
    assert_eq!(error.kind(), refbook_core::ErrorKind::Busy);
    assert!(error.retry_after().is_some());
    assert_eq!(model.local_report().unwrap().refused_busy, 1);
    // Once the held reply goes, the model answers again. The 1 s timeout covers the
    // first token too, which a debug build on a loaded machine may miss: asked again
    // until it answers, within a minute.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        let asked = model
            .stream(request(
                vec![system(), message(Role::User, "Who is Jane?")],
                8,
                Priority::Interactive,
            ))
            .await;
        match asked {
            Ok(stream) => break stream,
            Err(ModelError::Busy(_)) if Instant::now() < deadline => {}
            Err(err) => panic!("the model answers again once free: {err:?}"),
        }
    };
    let text = read_all(stream).await;
    assert!(!text.is_empty());
    assert_eq!(model.local_report().unwrap().waiting, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_answer_is_continued_natively() {
    let Some(model) = load(0, Duration::from_secs(60)).await else {
        eprintln!("skipped: REFBOOK_TEST_GGUF is not set");
        return;
    };
    let question = message(Role::User, "Who is Elizabeth Bennet?");
    let cold = answer(
        &model,
        request(vec![system(), question.clone()], 48, Priority::Interactive),
    )
    .await;
    // Cut the answer before a word near its middle (the tokens of a word carry their
    // leading space, so the start is the same tokens the model wrote).
    let middle = cold.len() / 2;
    let cut = cold[..middle].rfind(' ').expect("a space in the answer");
    let (start, rest) = cold.split_at(cut);
    assert!(start.len() > 10, "{cold:?}");
    let continued = answer(
        &model,
        request(
            vec![system(), question, message(Role::Assistant, start)],
            24,
            Priority::Interactive,
        ),
    )
    .await;
    // Only the new text, going on as the model would have: its first word is the next
    // of the cold answer's (later ones may differ: the start is now read as one prompt
    // batch, not written a token at a time, and rounding can flip a near tie).
    let words = |text: &str| -> Vec<String> {
        text.split_whitespace().take(1).map(str::to_owned).collect()
    };
    assert!(!continued.starts_with(start.trim()), "{continued:?}");
    assert_eq!(
        words(&continued),
        words(rest),
        "cold: {cold:?}, continued: {continued:?}"
    );
}
