//! Small GGUF models made on the spot, for architectures no small file on a registry
//! ships: random weights (their answers are noise) with a real tokenizer, so loading,
//! templating, streaming and usage run for real.

use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// The shape of the made-up model.
const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FFN: usize = 128;
const BLOCKS: usize = 2;

/// Writes to `to` a tiny model of `architecture` (`qwen2` with attention biases, or any
/// other name, for files that must be refused), with the tokenizer and chat template of
/// the GGUF at `tokenizer_from` and its pre-tokenizer named `pre`.
///
/// # Panics
///
/// When a file cannot be read or written (a test helper).
#[allow(clippy::expect_used)]
pub fn write_tiny_model(tokenizer_from: &Path, to: &Path, architecture: &str, pre: &str) {
    let mut source = std::fs::File::open(tokenizer_from).expect("the tokenizer's GGUF opens");
    let content = gguf_file::Content::read(&mut source).expect("a GGUF file");
    let vocab = content
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map(Vec::len)
        .expect("a vocabulary");

    let u32_value = |n: usize| gguf_file::Value::U32(u32::try_from(n).expect("small"));
    let mut metadata: Vec<(String, gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(key, _)| key.starts_with("tokenizer.") && *key != "tokenizer.ggml.pre")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let arch = |key: &str| format!("{architecture}.{key}");
    metadata.extend([
        (
            "general.architecture".to_owned(),
            gguf_file::Value::String(architecture.to_owned()),
        ),
        (
            "tokenizer.ggml.pre".to_owned(),
            gguf_file::Value::String(pre.to_owned()),
        ),
        (arch("attention.head_count"), u32_value(HEADS)),
        (arch("attention.head_count_kv"), u32_value(KV_HEADS)),
        (arch("embedding_length"), u32_value(HIDDEN)),
        (arch("feed_forward_length"), u32_value(FFN)),
        (arch("block_count"), u32_value(BLOCKS)),
        (arch("context_length"), u32_value(4096)),
        (
            arch("attention.layer_norm_rms_epsilon"),
            gguf_file::Value::F32(1e-6),
        ),
        (arch("rope.freq_base"), gguf_file::Value::F32(10_000.0)),
    ]);

    let random = |shape: &[usize]| {
        let t = Tensor::randn(0f32, 0.05, shape, &Device::Cpu).expect("random weights");
        QTensor::quantize(&t, GgmlDType::F32).expect("F32")
    };
    let ones = |n: usize| {
        let t = Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).expect("ones");
        QTensor::quantize(&t, GgmlDType::F32).expect("F32")
    };
    let kv = HIDDEN / HEADS * KV_HEADS;
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), random(&[vocab, HIDDEN])),
        ("output_norm.weight".into(), ones(HIDDEN)),
    ];
    for block in 0..BLOCKS {
        let name = |part: &str| format!("blk.{block}.{part}");
        tensors.extend([
            (name("attn_norm.weight"), ones(HIDDEN)),
            (name("ffn_norm.weight"), ones(HIDDEN)),
            (name("attn_q.weight"), random(&[HIDDEN, HIDDEN])),
            (name("attn_k.weight"), random(&[kv, HIDDEN])),
            (name("attn_v.weight"), random(&[kv, HIDDEN])),
            (name("attn_q.bias"), random(&[HIDDEN])),
            (name("attn_k.bias"), random(&[kv])),
            (name("attn_v.bias"), random(&[kv])),
            (name("attn_output.weight"), random(&[HIDDEN, HIDDEN])),
            (name("ffn_gate.weight"), random(&[FFN, HIDDEN])),
            (name("ffn_up.weight"), random(&[FFN, HIDDEN])),
            (name("ffn_down.weight"), random(&[HIDDEN, FFN])),
        ]);
    }
    let metadata: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut out = std::fs::File::create(to).expect("the model file is created");
    gguf_file::write(&mut out, &metadata, &tensors).expect("the model is written");
}
