//! The decoder itself — the Llama and Qwen2 families, by the architecture a GGUF file
//! names (`general.architecture`) — over candle's quantized matrix products.
//!
//! Its key/value cache ([`KvCache`]) is held by the caller, not inside the weights, so a
//! prompt's prefix can be kept after an answer and resumed by the next one (the worker's
//! [`super::prefix_cache::PrefixCache`]); a cache can be cut back to any of its first
//! tokens, and new tokens are processed in one batch at any position (a causal mask
//! offset by what is cached). The arithmetic is that of `candle-transformers`'
//! `quantized_llama` / `quantized_qwen2`, which hold their cache privately and can only
//! start a batch at position 0.

use candle_core::quantized::{gguf_file, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::Embedding;
use candle_transformers::quantized_nn::RmsNorm;

pub use super::kv_cache::KvCache;
use super::kv_cache::{append, failed};
use super::tiled::Linear;
use crate::llm::ModelError;

/// The architectures this build runs.
pub const SUPPORTED: &[&str] = &["llama", "qwen2"];

/// How the rotary position embedding pairs a head's dimensions.
#[derive(Debug, Clone, Copy)]
enum RopeStyle {
    /// Neighbouring dimensions (Llama files as llama.cpp converts them).
    Interleaved,
    /// The first half with the second (Qwen2, GPT-NeoX).
    Halves,
}

/// One attention head layout.
#[derive(Debug, Clone, Copy)]
struct Heads {
    query: usize,
    key_value: usize,
    dim: usize,
}

struct Layer {
    attention_norm: RmsNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    /// Qwen2's attention biases (query, key, value).
    biases: Option<[Tensor; 3]>,
    output: Linear,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// A loaded decoder of one of the [`SUPPORTED`] architectures.
pub struct Transformer {
    embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    heads: Heads,
    rope: RopeStyle,
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
}

/// The `general.architecture` of a GGUF file.
pub fn architecture(content: &gguf_file::Content) -> Option<&str> {
    content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
}

/// Reads a GGUF file's tensors and settings, for one architecture.
struct Reader<'a, R> {
    content: &'a gguf_file::Content,
    file: &'a mut R,
    arch: &'a str,
}

impl<R: std::io::Read + std::io::Seek> Reader<'_, R> {
    fn setting(&self, key: &str) -> candle_core::Result<&gguf_file::Value> {
        let key = format!("{}.{key}", self.arch);
        self.content
            .metadata
            .get(&key)
            .ok_or_else(|| candle_core::Error::Msg(format!("the file lacks {key}")))
    }

    fn number(&self, key: &str) -> candle_core::Result<usize> {
        Ok(self.setting(key)?.to_u32()? as usize)
    }

    fn tensor(&mut self, name: &str) -> candle_core::Result<QTensor> {
        super::requantize::requantize(self.content.tensor(self.file, name, &Device::Cpu)?)
    }

    fn matmul(&mut self, name: &str) -> candle_core::Result<Linear> {
        Linear::new(self.tensor(name)?)
    }

    fn norm(&mut self, name: &str, eps: f64) -> candle_core::Result<RmsNorm> {
        RmsNorm::from_qtensor(self.tensor(name)?, eps)
    }

    fn layer(&mut self, index: usize, eps: f64, biases: bool) -> candle_core::Result<Layer> {
        let name = |part: &str| format!("blk.{index}.{part}");
        let biases = if biases {
            Some([
                self.tensor(&name("attn_q.bias"))?
                    .dequantize(&Device::Cpu)?,
                self.tensor(&name("attn_k.bias"))?
                    .dequantize(&Device::Cpu)?,
                self.tensor(&name("attn_v.bias"))?
                    .dequantize(&Device::Cpu)?,
            ])
        } else {
            None
        };
        Ok(Layer {
            attention_norm: self.norm(&name("attn_norm.weight"), eps)?,
            query: self.matmul(&name("attn_q.weight"))?,
            key: self.matmul(&name("attn_k.weight"))?,
            value: self.matmul(&name("attn_v.weight"))?,
            biases,
            output: self.matmul(&name("attn_output.weight"))?,
            ffn_norm: self.norm(&name("ffn_norm.weight"), eps)?,
            gate: self.matmul(&name("ffn_gate.weight"))?,
            up: self.matmul(&name("ffn_up.weight"))?,
            down: self.matmul(&name("ffn_down.weight"))?,
        })
    }
}

impl Transformer {
    /// Reads the weights `content` describes from `file`, with rotary tables for
    /// `positions` tokens.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the architecture is not one of [`SUPPORTED`] or the
    /// file lacks a tensor or setting it needs.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        file: &mut R,
        positions: usize,
    ) -> Result<Self, ModelError> {
        let (arch, rope, biases) = match architecture(content) {
            Some("llama") => ("llama", RopeStyle::Interleaved, false),
            Some("qwen2") => ("qwen2", RopeStyle::Halves, true),
            other => {
                return Err(ModelError::Stream(format!(
                    "the model's architecture `{}` is not supported (supported: {})",
                    other.unwrap_or("unknown"),
                    SUPPORTED.join(", ")
                )))
            }
        };
        let mut reader = Reader {
            content,
            file,
            arch,
        };
        Self::read(&mut reader, rope, biases, positions)
            .map_err(|e| ModelError::Stream(format!("unsupported model: {e}")))
    }

    fn read<R: std::io::Read + std::io::Seek>(
        reader: &mut Reader<'_, R>,
        rope: RopeStyle,
        biases: bool,
        positions: usize,
    ) -> candle_core::Result<Self> {
        if reader.number("expert_count").unwrap_or(0) > 1 {
            candle_core::bail!("mixtures of experts are not supported");
        }
        let query_heads = reader.number("attention.head_count")?;
        let hidden = reader.number("embedding_length")?;
        let heads = Heads {
            query: query_heads,
            key_value: reader.number("attention.head_count_kv")?,
            dim: hidden / query_heads.max(1),
        };
        let eps = f64::from(
            reader
                .setting("attention.layer_norm_rms_epsilon")?
                .to_f32()?,
        );
        let freq_base = reader
            .setting("rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        let rope_dim = reader.number("rope.dimension_count").unwrap_or(heads.dim);
        let (cos, sin) = rotary_tables(rope_dim, freq_base, positions.max(1))?;
        let embeddings = reader.tensor("token_embd.weight")?;
        let output = match reader.tensor("output.weight") {
            Ok(output) => output,
            Err(_) => reader.tensor("token_embd.weight")?, // tied embeddings
        };
        let layers = (0..reader.number("block_count")?)
            .map(|index| reader.layer(index, eps, biases))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            embeddings: Embedding::new(embeddings.dequantize(&Device::Cpu)?, hidden),
            norm: reader.norm("output_norm.weight", eps)?,
            output: Linear::new(output)?,
            layers,
            heads,
            rope,
            cos,
            sin,
            neg_inf: Tensor::new(f32::NEG_INFINITY, &Device::Cpu)?,
        })
    }

    /// The bytes one position's keys and values take in a [`KvCache`] (every layer, f32).
    pub fn kv_bytes_per_position(&self) -> usize {
        self.layers.len() * 2 * self.heads.key_value * self.heads.dim * DType::F32.size_in_bytes()
    }

    /// The positions the rotary tables cover (the longest prompt and reply together).
    pub fn positions(&self) -> usize {
        self.cos.dims().first().copied().unwrap_or(0)
    }

    /// Processes `tokens` after the ones `cache` holds (in one batch), appends their keys
    /// and values to it, and gives the logits of the token after the last one.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when `tokens` is empty, runs past the rotary tables, or the
    /// computation fails.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor, ModelError> {
        if tokens.is_empty() || cache.len + tokens.len() > self.positions() {
            return Err(ModelError::Stream(format!(
                "{} tokens after {} do not fit the model's {} positions",
                tokens.len(),
                cache.len,
                self.positions()
            )));
        }
        self.run(tokens, cache).map_err(failed)
    }

    fn run(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let count = tokens.len();
        let repeat = self.heads.query / self.heads.key_value.max(1);
        let mask = (count > 1)
            .then(|| causal_mask(count, cache.len, repeat))
            .transpose()?;
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let mut hidden = self.embeddings.forward(&input)?;
        let mut cached = std::mem::take(&mut cache.layers).into_iter();
        let mut kept = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let normed = layer.attention_norm.forward(&hidden)?;
            let (attended, kv) = self.attention(
                layer,
                &normed,
                mask.as_ref(),
                (cache.len, cache.room),
                cached.next(),
            )?;
            kept.push(kv);
            let hidden_mid = (attended + &hidden)?;
            let normed = layer.ffn_norm.forward(&hidden_mid)?;
            let gate = candle_nn::ops::silu(&layer.gate.forward(&normed)?)?;
            let mixed = layer.down.forward(&(gate * layer.up.forward(&normed)?)?)?;
            hidden = (mixed + hidden_mid)?;
        }
        cache.layers = kept;
        cache.len += count;
        let last = self.norm.forward(&hidden)?.i((.., count - 1, ..))?;
        self.output.forward(&last)?.squeeze(0)
    }

    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        mask: Option<&Tensor>,
        (position, room): (usize, usize),
        cached: Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<(Tensor, (Tensor, Tensor))> {
        let (batch, count, hidden) = x.dims3()?;
        let Heads {
            query: n_query,
            key_value: n_kv,
            dim,
        } = self.heads;
        let mut q = layer.query.forward(x)?;
        let mut k = layer.key.forward(x)?;
        let mut v = layer.value.forward(x)?;
        if let Some([bq, bk, bv]) = &layer.biases {
            q = q.broadcast_add(bq)?;
            k = k.broadcast_add(bk)?;
            v = v.broadcast_add(bv)?;
        }
        let heads = |t: Tensor, n: usize| {
            t.reshape((batch, count, n, dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = self.rotate(&heads(q, n_query)?, position)?;
        let k = self.rotate(&heads(k, n_kv)?, position)?;
        let v = heads(v, n_kv)?;
        let (k_buffer, v_buffer) = cached.unzip();
        let (k_buffer, k) = append(k_buffer, &k, position, room)?;
        let (v_buffer, v) = append(v_buffer, &v, position, room)?;
        // Grouped-query attention without copying the cache for each query head: the
        // query heads that share a key/value head are stacked as rows of one product.
        let repeat = n_query / n_kv.max(1);
        let grouped = q.reshape((batch, n_kv, repeat * count, dim))?;
        let scores = (grouped.matmul(&k.t()?)? / (dim as f64).sqrt())?;
        let scores = match mask {
            Some(mask) => {
                let mask = mask.broadcast_as(scores.shape())?;
                mask.where_cond(&self.neg_inf.broadcast_as(scores.shape())?, &scores)?
            }
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights
            .matmul(&v)?
            .reshape((batch, n_query, count, dim))?
            .transpose(1, 2)?
            .reshape((batch, count, hidden))?;
        Ok((layer.output.forward(&out)?, (k_buffer, v_buffer)))
    }

    fn rotate(&self, x: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        let count = x.dim(2)?;
        let cos = self.cos.narrow(0, position, count)?;
        let sin = self.sin.narrow(0, position, count)?;
        match self.rope {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, &cos, &sin),
            RopeStyle::Halves => candle_nn::rotary_emb::rope(x, &cos, &sin),
        }
    }
}

/// `1` where query `i` (of `count`, after `offset` cached tokens) may not see key `j`,
/// for `heads` query heads stacked as rows.
fn causal_mask(count: usize, offset: usize, heads: usize) -> candle_core::Result<Tensor> {
    let width = offset + count;
    let mask: Vec<u8> = (0..heads * count)
        .flat_map(|row| (0..width).map(move |j| u8::from(j > row % count + offset)))
        .collect();
    Tensor::from_slice(&mask, (heads * count, width), &Device::Cpu)
}

/// The rotary embedding's cosines and sines for `positions` positions.
fn rotary_tables(
    dim: usize,
    freq_base: f32,
    positions: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1f32 / freq_base.powf(i as f32 / dim as f32))
        .collect();
    let count = theta.len();
    let theta = Tensor::new(theta.as_slice(), &Device::Cpu)?;
    let angles = Tensor::arange(
        0,
        u32::try_from(positions).unwrap_or(u32::MAX),
        &Device::Cpu,
    )?
    .to_dtype(DType::F32)?
    .reshape((positions, 1))?
    .matmul(&theta.reshape((1, count))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

#[cfg(test)]
#[path = "transformer_tests.rs"]
mod tests;
