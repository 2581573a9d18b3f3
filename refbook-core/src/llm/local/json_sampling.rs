//! Constrained sampling for `json_object` on the local engine: at each step only tokens
//! whose text keeps the answer the beginning of one JSON object may be chosen (the
//! model's own preference among them kept), and the answer ends when the object closes.

use candle_core::Tensor;
use candle_transformers::generation::LogitsProcessor;

use super::json_prefix::JsonPrefix;
use crate::llm::ModelError;

/// How many of the likeliest tokens are looked at; the rest only when none of them can
/// go on (tokens further down carry next to no probability).
const FIRST_LOOK: usize = 512;

/// The most allowed tokens sampled among.
const CANDIDATES: usize = 64;

/// Where the answer's JSON has got.
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

    /// The first [`CANDIDATES`] of `ids` (in order) whose text can follow, with the state
    /// each leads to.
    fn allowed_among(&self, ids: &[usize], texts: &[String]) -> Vec<(usize, JsonPrefix)> {
        ids.iter()
            .filter_map(|&id| Some((id, self.state.after(texts.get(id)?)?)))
            .take(CANDIDATES)
            .collect()
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
        let mut allowed = self.allowed_among(&order[..first], texts);
        if allowed.is_empty() && first < order.len() {
            // Rarely needed: none of the likeliest tokens can go on; look at the rest.
            order[first..].sort_unstable_by(by_logit);
            allowed = self.allowed_among(&order[first..], texts);
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
