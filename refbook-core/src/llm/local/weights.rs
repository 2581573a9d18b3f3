//! The transformer itself, by the architecture a GGUF file names
//! (`general.architecture`): the weights and their key-value cache.

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

use crate::llm::ModelError;

/// The architectures this build runs.
pub const SUPPORTED: &[&str] = &["llama", "qwen2"];

/// A loaded model of one of the [`SUPPORTED`] architectures.
pub enum Weights {
    /// Llama and its family (SmolLM, Llama 2/3, Mistral-style files saved as `llama`).
    Llama(quantized_llama::ModelWeights),
    /// Qwen2 and Qwen2.5 (attention with biases).
    Qwen2(quantized_qwen2::ModelWeights),
}

/// The `general.architecture` of a GGUF file.
pub fn architecture(content: &gguf_file::Content) -> Option<&str> {
    content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
}

impl Weights {
    /// Reads the weights `content` describes from `reader`.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the architecture is not one of [`SUPPORTED`] or the
    /// file lacks a tensor or setting it needs.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: gguf_file::Content,
        reader: &mut R,
    ) -> Result<Self, ModelError> {
        let unsupported =
            |e: candle_core::Error| ModelError::Stream(format!("unsupported model: {e}"));
        match architecture(&content) {
            Some("llama") => {
                quantized_llama::ModelWeights::from_gguf(content, reader, &Device::Cpu)
                    .map(Self::Llama)
                    .map_err(unsupported)
            }
            Some("qwen2") => {
                quantized_qwen2::ModelWeights::from_gguf(content, reader, &Device::Cpu)
                    .map(Self::Qwen2)
                    .map_err(unsupported)
            }
            other => Err(ModelError::Stream(format!(
                "the model's architecture `{}` is not supported (supported: {})",
                other.unwrap_or("unknown"),
                SUPPORTED.join(", ")
            ))),
        }
    }

    /// The logits of the token after `tokens`, the first of which sits at `position`
    /// (position 0 starts a new sequence and forgets the cached one).
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the computation fails.
    pub fn next_logits(&mut self, tokens: &[u32], position: usize) -> Result<Tensor, ModelError> {
        let failed = |e: candle_core::Error| ModelError::Stream(format!("the model failed: {e}"));
        let input = Tensor::new(tokens, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(failed)?;
        match self {
            Self::Llama(model) => model.forward(&input, position),
            Self::Qwen2(model) => model.forward(&input, position),
        }
        .and_then(|t| t.squeeze(0))
        .map_err(failed)
    }
}
