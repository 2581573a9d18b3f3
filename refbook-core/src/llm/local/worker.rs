//! The thread that owns a local model: it loads the weights once, then answers queued
//! requests one at a time.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use candle_transformers::generation::LogitsProcessor;
use tokio::sync::{mpsc, oneshot};

use super::settings::LocalSettings;
use super::weights::Weights;
use super::GgufVocab;
use crate::domain::{FinishReason, TokenUsage};
use crate::llm::{ChatRequest, ModelError, ModelEvent};

/// One request and where its events go.
pub struct Job {
    pub request: ChatRequest,
    pub events: mpsc::Sender<Result<ModelEvent, ModelError>>,
}

/// The last tokens the repeat penalty looks at, and how strongly (small models loop).
const REPEAT_WINDOW: usize = 64;
const REPEAT_PENALTY: f32 = 1.1;

struct Loaded {
    weights: Weights,
    vocab: GgufVocab,
    settings: LocalSettings,
}

fn stream_error(what: &str, err: impl std::fmt::Display) -> ModelError {
    ModelError::Stream(format!("{what}: {err}"))
}

fn load(settings: LocalSettings) -> Result<Loaded, ModelError> {
    let mut file = std::fs::File::open(&settings.path).map_err(|e| {
        stream_error(
            &format!("cannot open the model file {}", settings.path.display()),
            e,
        )
    })?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| stream_error("not a GGUF model file", e))?;
    let vocab = GgufVocab::from_gguf(&content)?;
    let weights = if content
        .tensor_infos
        .values()
        .any(|info| needs_requantizing(info.ggml_dtype))
    {
        let mut converted = requantized(&content, &mut file)?;
        let content = gguf_file::Content::read(&mut converted)
            .map_err(|e| stream_error("requantized model", e))?;
        Weights::from_gguf(content, &mut converted)
    } else {
        Weights::from_gguf(content, &mut file)
    }?;
    Ok(Loaded {
        weights,
        vocab,
        settings,
    })
}

/// Block types candle multiplies only with its scalar fallback (no SIMD kernel): such
/// weights are converted to Q8_0 once, at load, which candle multiplies ~1.5× faster on
/// this machine's AVX2 and loses nothing measurable (8 bits from 4).
fn needs_requantizing(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// The model with its slow-to-multiply weights converted to Q8_0, as an in-memory GGUF.
fn requantized(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
) -> Result<std::io::Cursor<Vec<u8>>, ModelError> {
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let tensor = content
            .tensor(file, name, &Device::Cpu)
            .map_err(|e| stream_error("reading the model", e))?;
        let row = tensor.shape().dims().last().copied().unwrap_or(0);
        let tensor =
            if needs_requantizing(tensor.dtype()) && row % GgmlDType::Q8_0.block_size() == 0 {
                tensor
                    .dequantize(&Device::Cpu)
                    .and_then(|weights| QTensor::quantize(&weights, GgmlDType::Q8_0))
                    .map_err(|e| stream_error("requantizing the model", e))?
            } else {
                tensor
            };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(name, t)| (*name, t)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensors)
        .map_err(|e| stream_error("requantizing the model", e))?;
    out.set_position(0);
    Ok(out)
}

/// The worker's life: load, report, then serve until every sender is gone.
pub fn run(
    settings: LocalSettings,
    ready: oneshot::Sender<Result<(), ModelError>>,
    mut queue: mpsc::Receiver<Job>,
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
    let mut loaded = match pool.install(|| load(settings)) {
        Ok(loaded) => {
            let _ = ready.send(Ok(()));
            loaded
        }
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    while let Some(job) = queue.blocking_recv() {
        if job.events.is_closed() {
            continue; // The asker left while waiting.
        }
        let events = job.events.clone();
        // A panic in one answer fails that answer, not the model: the worker lives on
        // (each answer starts from an empty cache at position 0).
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| answer(&mut loaded, job))
        }));
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
}

/// Generates one reply, sending its events; stops early when the receiver is gone.
fn answer(model: &mut Loaded, job: Job) -> Result<(), ModelError> {
    let Job { request, events } = job;
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
    // The first event: the request is accepted (the caller waits for it).
    if events
        .blocking_send(Ok(ModelEvent::Content(String::new())))
        .is_err()
    {
        return Ok(());
    }
    let mut logits = model.weights.next_logits(&prompt_tokens, 0)?;
    let mut reply: Vec<u32> = Vec::new();
    // The text sent so far is `text[..shown]`.
    let mut shown = 0;
    let mut text = String::new();
    let mut finish = FinishReason::Length;
    let mut cut = false;
    while reply.len() < max_reply {
        let recent = &reply[reply.len().saturating_sub(REPEAT_WINDOW)..];
        let logits_now =
            candle_transformers::utils::apply_repeat_penalty(&logits, REPEAT_PENALTY, recent)
                .map_err(|e| stream_error("sampling", e))?;
        let token = sampler
            .sample(&logits_now)
            .map_err(|e| stream_error("sampling", e))?;
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
                return Ok(()); // The reply was stopped or its reader left.
            }
            shown = shown.max(end);
            if stop_hit {
                (finish, cut) = (FinishReason::Stop, true);
                break;
            }
        }
        if reply.len() < max_reply {
            logits = model
                .weights
                .next_logits(&[token], prompt_tokens.len() + reply.len() - 1)?;
        }
    }
    // What was held back as the possible start of a stop sequence that never came.
    if !cut && text.len() > shown && !send(&events, &text[shown..]) {
        return Ok(());
    }
    let usage = TokenUsage::new(
        i64::try_from(prompt_tokens.len()).unwrap_or(i64::MAX),
        i64::try_from(reply.len()).unwrap_or(i64::MAX),
    );
    let _ = events.blocking_send(Ok(ModelEvent::Usage(usage)));
    let _ = events.blocking_send(Ok(ModelEvent::Finish(finish)));
    Ok(())
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
