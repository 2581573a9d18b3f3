//! The thread that owns a local model: it loads the weights once, then answers queued
//! requests one at a time, readers' first, resuming each prompt from the longest cached
//! beginning of it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_transformers::generation::LogitsProcessor;
use tokio::sync::{mpsc, oneshot};

use super::json_sampling::JsonConstraint;
use super::prefix_cache::{PrefixCache, Reuse};
use super::queue::{Counters, Job, Queue};
use super::settings::LocalSettings;
use super::transformer::{KvCache, Transformer};
use super::GgufVocab;
use crate::domain::{FinishReason, TokenUsage};
use crate::llm::{ModelError, ModelEvent, Priority};

/// The last tokens the repeat penalty looks at, and how strongly (small models loop).
const REPEAT_WINDOW: usize = 64;
const REPEAT_PENALTY: f32 = 1.1;

struct Loaded {
    transformer: Transformer,
    vocab: GgufVocab,
    /// Every token's text, read at the first answer that must be JSON.
    token_texts: Option<Arc<Vec<String>>>,
    settings: LocalSettings,
    cache: PrefixCache,
    counters: Arc<Counters>,
}

impl Loaded {
    /// Every token's text (read once).
    fn token_texts(&mut self) -> Result<Arc<Vec<String>>, ModelError> {
        if let Some(texts) = &self.token_texts {
            return Ok(texts.clone());
        }
        let texts = Arc::new(self.vocab.token_texts()?);
        self.token_texts = Some(texts.clone());
        Ok(texts)
    }

    fn count_prompt(&self, reuse: Reuse) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let counters = &self.counters;
        counters
            .prompt_tokens_cached
            .fetch_add(count(reuse.cached), Ordering::Relaxed);
        counters
            .prompt_tokens_computed
            .fetch_add(count(reuse.computed), Ordering::Relaxed);
    }

    /// Keeps a prompt's cache for the next question.
    fn keep(&mut self, sequence: &[u32], kv: &KvCache) -> Result<(), ModelError> {
        self.cache.keep(sequence, kv)?;
        self.report_cache();
        Ok(())
    }

    /// Counts `bytes` of key/value buffers of answers in progress against the cache's
    /// bound.
    fn set_working(&mut self, bytes: usize) {
        self.cache.set_working(bytes);
        self.report_cache();
    }

    fn report_cache(&self) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.counters
            .cache_bytes
            .store(count(self.cache.bytes()), Ordering::Relaxed);
        self.counters
            .cache_entries
            .store(count(self.cache.len()), Ordering::Relaxed);
    }
}

fn stream_error(what: &str, err: impl std::fmt::Display) -> ModelError {
    ModelError::Stream(format!("{what}: {err}"))
}

fn load(settings: LocalSettings, counters: Arc<Counters>) -> Result<Loaded, ModelError> {
    let mut file = std::fs::File::open(&settings.path).map_err(|e| {
        stream_error(
            &format!("cannot open the model file {}", settings.path.display()),
            e,
        )
    })?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| stream_error("not a GGUF model file", e))?;
    let vocab = GgufVocab::from_gguf(&content)?;
    let positions = settings.context_tokens;
    // Weights in block types candle multiplies slowly are converted as they are read
    // (`requantize`), one tensor at a time: no second copy of the model is ever held.
    let transformer = Transformer::from_gguf(&content, &mut file, positions)?;
    Ok(Loaded {
        transformer,
        vocab,
        token_texts: None,
        cache: PrefixCache::new(settings.cache_bytes),
        settings,
        counters,
    })
}

/// Prompt tokens processed in one batch, in steps from position 0. Fixed steps make a
/// resumed prompt compute exactly what a cold run does: the matrix products' summation
/// order depends on their shapes, so a token's keys and values are the same bits only when
/// computed in the same step. A resumed prompt starts at a multiple of the step, so up to
/// 31 cached tokens go unused. (32 rows already share each weight block in the tiled
/// products; background work yields between steps.)
const PREFILL_STEP: usize = 32;

/// The worker's life: load, report, then serve until every sender is gone.
pub fn run(
    settings: LocalSettings,
    ready: oneshot::Sender<Result<(), ModelError>>,
    mut queue: Queue,
    counters: Arc<Counters>,
) {
    let threads = settings.threads;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("refbook-local-model-{i}"))
        .build();
    let pool = match pool {
        Ok(pool) => pool,
        Err(err) => {
            let _ = ready.send(Err(stream_error("cannot start the model's threads", err)));
            return;
        }
    };
    let mut loaded = match pool.install(|| load(settings, counters)) {
        Ok(loaded) => {
            let _ = ready.send(Ok(()));
            loaded
        }
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    while let Some(job) = queue.next() {
        pool.install(|| serve(&mut loaded, job, &mut queue));
    }
}

/// Answers one request; a failure (even a panic) fails that answer, not the model.
fn serve(model: &mut Loaded, job: Job, queue: &mut Queue) {
    let events = job.events.clone();
    let outer = model.cache.working();
    let answered =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer(model, job, queue)));
    model.set_working(outer);
    let failure = match answered {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err),
        Err(_) => Some(ModelError::Stream(
            "the local model failed on this request".into(),
        )),
    };
    if let Some(err) = failure {
        tracing::error!(error = %err, "local model answer failed");
        let _ = events.blocking_send(Err(err));
    }
}

/// Generates one reply, sending its events; stops early when the receiver is gone.
/// Background work answers readers' waiting questions between its steps.
fn answer(model: &mut Loaded, job: Job, queue: &mut Queue) -> Result<(), ModelError> {
    let Job {
        request, events, ..
    } = job;
    let background = request.priority == Priority::Background;
    let prompt = model.vocab.render(&request.messages)?;
    let prompt_tokens = model.vocab.encode(&prompt)?;
    let max_reply = request
        .max_tokens
        .map_or(model.settings.max_reply_tokens, |n| n as usize)
        .min(model.settings.max_reply_tokens);
    if prompt_tokens.len() + max_reply.min(16) > model.settings.context_tokens {
        return Err(ModelError::ContextExceeded);
    }
    let room = model.settings.context_tokens - prompt_tokens.len();
    let max_reply = max_reply.min(room);
    let temperature = request.sampling.temperature.map_or(0.7, f64::from);
    let top_p = request.sampling.top_p.map_or(0.9, f64::from);
    let mut sampler = LogitsProcessor::new(
        rand::random(),
        (temperature > 0.0).then_some(temperature),
        Some(top_p),
    );
    let mut json = if request.sampling.json_object {
        Some((JsonConstraint::new(), model.token_texts()?))
    } else {
        None
    };
    // The first event: the request is accepted (the caller waits for it).
    if events
        .blocking_send(Ok(ModelEvent::Content(String::new())))
        .is_err()
    {
        return Ok(());
    }
    let positions = prompt_tokens.len() + max_reply;
    let (mut kv, reuse) = model
        .cache
        .resume(&prompt_tokens, PREFILL_STEP, positions)?;
    // This answer's buffers count against the cache's bound while it runs (beside those
    // of a background answer it interrupts).
    let working = positions * model.transformer.kv_bytes_per_position();
    model.set_working(model.cache.working() + working);
    model.count_prompt(reuse);
    let mut logits = None;
    for step in prompt_tokens[reuse.cached..].chunks(PREFILL_STEP) {
        if background {
            yield_to_readers(model, queue);
        }
        logits = Some(model.transformer.forward(step, &mut kv)?);
    }
    let Some(mut logits) = logits else {
        return Err(ModelError::Stream("an empty prompt".into()));
    };
    // Kept for the next question is the prompt's cache as prefilled, not the reply's:
    // a reply's keys and values computed one token at a time differ in the last bits from
    // the same tokens prefilled as part of the next prompt (another summation order), and
    // a cached run must compute exactly what a cold run does.
    model.keep(&prompt_tokens, &kv)?;
    let prompt_len = prompt_tokens.len();
    let mut reply: Vec<u32> = Vec::new();
    // The text sent so far is `text[..shown]`.
    let mut shown = 0;
    let mut text = String::new();
    let mut finish = FinishReason::Length;
    let mut cut = false;
    let mut listening = true;
    while reply.len() < max_reply {
        let recent = &reply[reply.len().saturating_sub(REPEAT_WINDOW)..];
        let logits_now =
            candle_transformers::utils::apply_repeat_penalty(&logits, REPEAT_PENALTY, recent)
                .map_err(|e| stream_error("sampling", e))?;
        let token = match &mut json {
            Some((constraint, texts)) => {
                match constraint.choose(&logits_now, texts, &mut sampler)? {
                    Some(token) => token,
                    None => break,
                }
            }
            None => sampler
                .sample(&logits_now)
                .map_err(|e| stream_error("sampling", e))?,
        };
        if model.vocab.end_tokens.contains(&token) {
            finish = FinishReason::Stop;
            break;
        }
        reply.push(token);
        let decoded = model.vocab.decode(&reply)?;
        // Wait for a whole character before showing a piece.
        if !decoded.ends_with('\u{FFFD}') && decoded.is_char_boundary(shown) {
            text = decoded;
            let (end, stop_hit) = visible_end(&text, &request.sampling.stop);
            if end > shown && !send(&events, &text[shown..end]) {
                listening = false; // The reply was stopped or its reader left.
                break;
            }
            shown = shown.max(end);
            if stop_hit {
                (finish, cut) = (FinishReason::Stop, true);
                break;
            }
        }
        if json
            .as_ref()
            .is_some_and(|(constraint, _)| constraint.is_done())
        {
            finish = FinishReason::Stop;
            break;
        }
        if reply.len() < max_reply {
            if background {
                yield_to_readers(model, queue);
            }
            logits = model.transformer.forward(&[token], &mut kv)?;
        }
    }
    // What was held back as the possible start of a stop sequence that never came.
    if !listening || (!cut && text.len() > shown && !send(&events, &text[shown..])) {
        return Ok(());
    }
    let usage = TokenUsage::new(
        i64::try_from(prompt_len).unwrap_or(i64::MAX),
        i64::try_from(reply.len()).unwrap_or(i64::MAX),
    );
    let _ = events.blocking_send(Ok(ModelEvent::Usage(usage)));
    let _ = events.blocking_send(Ok(ModelEvent::Finish(finish)));
    Ok(())
}

/// Answers every reader's question waiting now (background work's pause).
fn yield_to_readers(model: &mut Loaded, queue: &mut Queue) {
    while let Some(job) = queue.next_interactive() {
        serve(model, job, queue);
    }
}

/// Sends a piece of the answer; `false` when nobody listens any more.
fn send(events: &mpsc::Sender<Result<ModelEvent, ModelError>>, piece: &str) -> bool {
    events
        .blocking_send(Ok(ModelEvent::Content(piece.to_owned())))
        .is_ok()
}

/// How much of `text` may be shown, and whether a stop sequence ended it: up to the first
/// stop sequence if one appears, else all but an ending that could begin one.
fn visible_end(text: &str, stops: &[String]) -> (usize, bool) {
    let stops = stops.iter().filter(|s| !s.is_empty());
    if let Some(at) = stops.clone().filter_map(|s| text.find(s.as_str())).min() {
        return (at, true);
    }
    let held = stops
        .map(|stop| {
            (1..stop.len())
                .rev()
                .find(|&k| stop.is_char_boundary(k) && text.ends_with(&stop[..k]))
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    (text.len() - held, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_sequences_end_the_text_and_their_beginnings_wait() {
        let stops = vec!["END".to_owned()];
        assert_eq!(visible_end("hello wor", &stops), (9, false));
        assert_eq!(
            visible_end("hello EN", &stops),
            (6, false),
            "EN may begin END"
        );
        assert_eq!(visible_end("hello END more", &stops), (6, true));
        assert_eq!(visible_end("hello", &[]), (5, false));
        let cjk = vec!["。完".to_owned()];
        assert_eq!(visible_end("好。", &cjk), ("好".len(), false));
    }
}
