//! The workloads of `refbook-model-bench`, for any [`ChatModel`] (the local model in this
//! process, or `llama-server` over its API): one answer timed to its first text and
//! decoding rate, prompts of a given length, a conversation turn by turn, and a grounded
//! question (a book's passages in the prompt).

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use refbook_core::chat::Role;
use refbook_core::llm::{ChatModel, ChatRequest, ModelEvent, Priority, PromptMessage, Sampling};

/// One answer's timing.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// From the request to the first text.
    pub first: Duration,
    /// Decoding tokens per second after the first text.
    pub rate: f64,
    /// Prompt tokens, as the model counted them.
    pub prompt_tokens: i64,
    /// Reply tokens.
    pub completion_tokens: i64,
}

/// A system message then alternating questions and answers.
pub fn chat(system: &str, turns: &[(&str, Option<&str>)], max_tokens: u32) -> ChatRequest {
    let mut messages = vec![message(Role::System, system)];
    for (question, answer) in turns {
        messages.push(message(Role::User, question));
        if let Some(answer) = answer {
            messages.push(message(Role::Assistant, answer));
        }
    }
    ChatRequest {
        messages,
        user: "bench".into(),
        max_tokens: Some(max_tokens),
        sampling: Sampling {
            temperature: Some(0.0),
            ..Sampling::default()
        },
        priority: Priority::Interactive,
        tools: None,
    }
}

fn message(role: Role, content: &str) -> PromptMessage {
    PromptMessage {
        role,
        content: content.to_owned(),
    }
}

/// Times one answer; gives its text too.
pub async fn measure(
    model: &dyn ChatModel,
    request: ChatRequest,
) -> anyhow::Result<(Timed, String)> {
    let started = Instant::now();
    let mut stream = model.stream(request).await?;
    let mut first = None;
    let (mut text, mut pieces) = (String::new(), 0);
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    while let Some(event) = stream.next().await {
        match event? {
            ModelEvent::Content(piece) if !piece.is_empty() => {
                pieces += 1;
                text.push_str(&piece);
                first.get_or_insert_with(|| started.elapsed());
            }
            ModelEvent::Usage(usage) => {
                prompt_tokens = usage.prompt_tokens;
                completion_tokens = usage.completion_tokens;
            }
            _ => {}
        }
    }
    // A server that reports no usage streams one token per chunk.
    if completion_tokens == 0 {
        completion_tokens = pieces;
    }
    let total = started.elapsed();
    let first = first.context("no text")?;
    let rate = (completion_tokens - 1).max(1) as f64 / (total - first).as_secs_f64();
    Ok((
        Timed {
            first,
            rate,
            prompt_tokens,
            completion_tokens,
        },
        text,
    ))
}

/// About `tokens` tokens of book-like English, different for each `seed` from its first
/// words (so no prompt cache can serve one run from another).
pub fn filler(tokens: usize, seed: usize) -> String {
    const PLACES: [&str; 6] = [
        "Netherfield",
        "Longbourn",
        "Pemberley",
        "Rosings",
        "Meryton",
        "Hunsford",
    ];
    // About 20 tokens a sentence with SmolLM2's and Qwen's tokenizers.
    (0..tokens.div_ceil(20))
        .map(|i| {
            format!(
                "In part {} of letter {seed}, the reader walks from {} to {} and thinks about what was said. ",
                i + 1,
                PLACES[(i + seed) % PLACES.len()],
                PLACES[(i * 7 + seed + 1) % PLACES.len()],
            )
        })
        .collect()
}

/// The first token after a prompt of about `tokens` tokens (one reply token): prompt
/// tokens per second of prefill.
pub async fn prefill(model: &dyn ChatModel, tokens: usize, seed: usize) -> anyhow::Result<Timed> {
    let system = format!(
        "Run {seed}. You summarise letters.\n{}",
        filler(tokens, seed)
    );
    let request = chat(&system, &[("Summarise the letter in one line.", None)], 1);
    Ok(measure(model, request).await?.0)
}

/// The questions of the conversation workload (the measurement: eight questions
/// on one book, replies of up to 64 tokens).
pub const QUESTIONS: [&str; 8] = [
    "Who wrote this book?",
    "What is the book about?",
    "Who is the main character?",
    "Where does the story take place?",
    "What is the main conflict?",
    "Which character changes the most?",
    "How does the book end?",
    "Would you recommend it to a new reader?",
];

/// The system prompt of the conversation workload: a librarian and the book's facts.
pub fn librarian(seed: usize) -> String {
    format!(
        "You are a librarian who knows the book \"The Three-Body Problem\" (conversation {seed}). \
         Answer the reader's question using the facts below. If you are not sure, say so; \
         never make facts up. Answer in the language the reader writes in.\n\n\
         The book:\nTitle: The Three-Body Problem\nAuthor: Liu Cixin\nTranslator: Ken Liu\n\
         Publisher: Tor Books\nYear: 2014\nSummary: Set against the backdrop of China's \
         Cultural Revolution, a secret military project sends signals into space to \
         establish contact with aliens. An alien civilization on the brink of destruction \
         captures the signal and plans to invade Earth."
    )
}

/// One conversation of [`QUESTIONS`], each asked with the history so far: each turn's
/// timing.
pub async fn conversation(
    model: &dyn ChatModel,
    seed: usize,
    max_tokens: u32,
) -> anyhow::Result<Vec<Timed>> {
    let system = librarian(seed);
    let mut answers: Vec<String> = Vec::new();
    let mut turns = Vec::new();
    for (i, question) in QUESTIONS.iter().enumerate() {
        let history: Vec<(&str, Option<&str>)> = QUESTIONS[..i]
            .iter()
            .zip(&answers)
            .map(|(q, a)| (*q, Some(a.as_str())))
            .chain([(*question, None)])
            .collect();
        let (timed, text) = measure(model, chat(&system, &history, max_tokens)).await?;
        answers.push(text);
        turns.push(timed);
    }
    Ok(turns)
}

/// A grounded question: the book's facts, then about `passages` tokens of its text, then
/// the question.
pub fn grounded(seed: usize, passages: usize, question: &str) -> ChatRequest {
    let system = format!(
        "{}\n\nPassages from the book (cite them as [1], [2], …):\n{}",
        librarian(seed),
        filler(passages, seed + 1000)
    );
    chat(&system, &[(question, None)], 64)
}
