//! [`BertEmbedder`]: a BERT-family sentence-transformers model (MiniLM, bge, …) run on
//! the CPU with candle: tokenised, encoded, pooled as the model's own pooling file says
//! (mean of the tokens, or the `[CLS]` token), and scaled to unit length.

use std::path::Path;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use super::Embedder;

/// Texts encoded together (sorted by length first, so little padding is computed).
const BATCH: usize = 8;
/// The longest input read when the model does not say (`sentence_bert_config.json`).
const DEFAULT_MAX_TOKENS: usize = 512;

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

/// A sentence embedder loaded from a folder.
pub struct BertEmbedder {
    id: String,
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    unknown: Option<u32>,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("id", &self.id)
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

fn read(folder: &Path, name: &str) -> Result<Vec<u8>, String> {
    std::fs::read(folder.join(name)).map_err(|e| format!("{}: {e}", folder.join(name).display()))
}

impl BertEmbedder {
    /// Loads the model in `folder` (`config.json`, `tokenizer.json`, `model.safetensors`,
    /// optionally `1_Pooling/config.json` and `sentence_bert_config.json`), named `id`.
    ///
    /// # Errors
    ///
    /// What is missing or unreadable.
    pub fn load(folder: &Path, id: String) -> Result<Self, String> {
        let config: Config = serde_json::from_slice(&read(folder, "config.json")?)
            .map_err(|e| format!("config.json: {e}"))?;
        let pooling = match read(folder, "1_Pooling/config.json") {
            Ok(bytes) => match serde_json::from_slice::<PoolingFile>(&bytes) {
                Ok(file) if file.pooling_mode_cls_token => Pooling::Cls,
                Ok(_) => Pooling::Mean,
                Err(e) => return Err(format!("1_Pooling/config.json: {e}")),
            },
            Err(_) => Pooling::Mean,
        };
        let max_tokens = read(folder, "sentence_bert_config.json")
            .ok()
            .and_then(|bytes| serde_json::from_slice::<SentenceBertFile>(&bytes).ok())
            .and_then(|file| file.max_seq_length)
            .unwrap_or(DEFAULT_MAX_TOKENS)
            .min(config.max_position_embeddings);
        let mut tokenizer = Tokenizer::from_file(folder.join("tokenizer.json"))
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        tokenizer.with_padding(Some(PaddingParams {
            pad_id,
            ..PaddingParams::default()
        }));
        let unknown = tokenizer.token_to_id("[UNK]");
        let weights = read(folder, "model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| format!("model.safetensors: {e}"))?;
        let model = BertModel::load(vb, &config).map_err(|e| format!("the model: {e}"))?;
        Ok(Self {
            id,
            model,
            tokenizer,
            pooling,
            unknown,
        })
    }

    /// Vectors of one batch of texts.
    fn embed_batch(&self, texts: &[&str]) -> candle_core::Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(candle_core::Error::msg)?;
        let ids: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_ids(), &Device::Cpu))
            .collect::<candle_core::Result<_>>()?;
        let masks: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &Device::Cpu))
            .collect::<candle_core::Result<_>>()?;
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&masks, 0)?;
        let types = ids.zeros_like()?;
        let tokens = self.model.forward(&ids, &types, Some(&mask))?;
        let pooled = match self.pooling {
            Pooling::Cls => tokens.i((.., 0))?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = tokens.broadcast_mul(&mask)?.sum(1)?;
                summed.broadcast_div(&mask.sum(1)?)?
            }
        };
        let norms = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
        pooled.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

impl Embedder for BertEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
            let out = self.embed_batch(&inputs).map_err(|e| e.to_string())?;
            for (&i, vector) in batch.iter().zip(out) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    fn known_share(&self, text: &str) -> f32 {
        let Ok(encoding) = self.tokenizer.encode(text, false) else {
            return 0.0;
        };
        let ids = encoding.get_ids();
        if ids.is_empty() {
            return 0.0;
        }
        let unknown = ids.iter().filter(|&&id| Some(id) == self.unknown).count();
        #[allow(clippy::cast_precision_loss)]
        let share = 1.0 - unknown as f32 / ids.len() as f32;
        share
    }
}
