//! The decoder against candle's reference Llama.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_transformers::models::quantized_llama;

use super::*;

/// The largest difference between two logit vectors.
fn distance(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Our decoder computes what candle's reference Llama computes, whole prompts and
/// prompts resumed from a cache alike (SmolLM2 from `REFBOOK_TEST_GGUF`).
#[test]
fn it_matches_candles_llama_cold_and_resumed() {
    // The GGUF CI uses (as `testing::local_model_file` reads it; not imported here:
    // `testing` builds on the chat service, which builds on this module).
    let Some(path) = std::env::var_os("REFBOOK_TEST_GGUF").filter(|p| !p.is_empty()) else {
        assert!(
            std::env::var("REFBOOK_TEST_REQUIRE_LOCAL_MODEL").as_deref() != Ok("1"),
            "REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1 but REFBOOK_TEST_GGUF is not set"
        );
        eprintln!("SKIPPED: the decoder's comparison with candle (set REFBOOK_TEST_GGUF)");
        return;
    };
    let mut file = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut converted = super::super::requantize::requantized(&content, &mut file).unwrap();
    let content = gguf_file::Content::read(&mut converted).unwrap();
    let ours = Transformer::from_gguf(&content, &mut converted, 512).unwrap();
    converted.set_position(0);
    let content = gguf_file::Content::read(&mut converted).unwrap();
    let mut reference =
        quantized_llama::ModelWeights::from_gguf(content, &mut converted, &Device::Cpu).unwrap();
    let tokens: Vec<u32> = (0..70).map(|i| 100 + i * 37).collect();
    let input = Tensor::new(tokens.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let expected = reference.forward(&input, 0).unwrap().squeeze(0).unwrap();

    let mut cache = KvCache::default();
    let whole = ours.forward(&tokens, &mut cache).unwrap();
    assert_eq!(cache.len(), 70);
    assert!(
        distance(&whole, &expected) < 1e-2,
        "{}",
        distance(&whole, &expected)
    );

    // Resumed: 32 tokens kept, the rest after them; then one token more on both.
    let mut resumed = cache.truncated(32, 0).unwrap();
    let again = ours.forward(&tokens[32..], &mut resumed).unwrap();
    assert!(distance(&again, &expected) < 1e-2);
    let next = Tensor::new(&[7u32], &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let expected = reference.forward(&next, 70).unwrap().squeeze(0).unwrap();
    let step = ours.forward(&[7], &mut resumed).unwrap();
    assert!(
        distance(&step, &expected) < 1e-2,
        "{}",
        distance(&step, &expected)
    );
    assert!(ours.forward(&[7], &mut KvCache::default()).is_ok());
    assert!(cache.truncated(71, 0).is_err(), "no more than it holds");
}
