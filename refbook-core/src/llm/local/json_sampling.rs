//! Constrained sampling for `json_object` on the local engine: at each step only tokens
//! whose text keeps the answer the beginning of one JSON object may be chosen (the
//! model's own preference among them kept), and the answer ends when the object closes.

use candle_core::Tensor;
use candle_transformers::generation::LogitsProcessor;

use super::json_prefix::JsonPrefix;
use crate::llm::ModelError;

/// How many of the likeliest tokens are looked at before the rest (most steps find
/// enough allowed ones among them).
const FIRST_LOOK: usize = 512;

/// The most allowed tokens sampled among.
const CANDIDATES: usize = 64;

/// The answer's JSON so far, and the text of every token.
pub(super) struct JsonConstraint {
    state: JsonPrefix,
}

fn sampling_error(err: impl std::fmt::Display) -> ModelError {
    ModelError::Stream(format!("sampling: {err}"))
}

impl JsonConstraint {
    /// A constraint on an answer not yet begun.
    pub(super) fn new() -> Self {
        Self {
            state: JsonPrefix::default(),
        }
    }

    /// Whether the object is closed: the answer is complete.
    pub(super) fn is_done(&self) -> bool {
        self.state.is_done()
    }

    /// Chooses the next token by `sampler` among those `logits` allow that keep the
    /// answer JSON (`texts`: each token's text; a token without text is never allowed);
    /// `None` when no token can.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the logits cannot be read or sampled.
    pub(super) fn choose(
        &mut self,
        logits: &Tensor,
        texts: &[String],
        sampler: &mut LogitsProcessor,
    ) -> Result<Option<u32>, ModelError> {
        let values: Vec<f32> = logits.to_vec1().map_err(sampling_error)?;
        let mut order: Vec<usize> = (0..values.len()).collect();
        let by_logit = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]);
        let first = FIRST_LOOK.min(order.len());
        if first < order.len() {
            order.select_nth_unstable_by(first, by_logit);
        }
        order[..first].sort_unstable_by(by_logit);
        let mut allowed: Vec<(usize, JsonPrefix)> = Vec::new();
        let mut looked = 0;
        while allowed.len() < CANDIDATES && looked < order.len() {
            if looked == first {
                // Rarely needed: the likeliest tokens could not go on; look at the rest.
                order[first..].sort_unstable_by(by_logit);
            }
            let id = order[looked];
            looked += 1;
            if let Some(next) = texts.get(id).and_then(|text| self.state.after(text)) {
                allowed.push((id, next));
            }
        }
        if allowed.is_empty() {
            return Ok(None);
        }
        let mut masked = vec![f32::NEG_INFINITY; values.len()];
        for (id, _) in &allowed {
            masked[*id] = values[*id];
        }
        let masked =
            Tensor::from_vec(masked, values.len(), logits.device()).map_err(sampling_error)?;
        let token = sampler.sample(&masked).map_err(sampling_error)?;
        let chosen = allowed
            .iter()
            .position(|(id, _)| u32::try_from(*id).ok() == Some(token))
            .unwrap_or(0);
        let (id, next) = allowed.swap_remove(chosen);
        self.state = next;
        Ok(u32::try_from(id).ok())
    }
}
