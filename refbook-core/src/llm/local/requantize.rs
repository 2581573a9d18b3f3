//! Weights in block types candle multiplies only with its scalar fallback (Q4_1, Q5_0,
//! Q5_1) converted to Q8_0 as they are read, one tensor at a time.

#[cfg(test)]
use candle_core::quantized::gguf_file;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;

#[cfg(test)]
use crate::llm::ModelError;

/// Block types candle multiplies only with its scalar fallback (no SIMD kernel): such
/// weights are converted to Q8_0 once, at load, which candle multiplies ~1.5× faster on
/// this machine's AVX2 and loses nothing measurable (8 bits from 4).
fn needs_requantizing(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// `tensor`, converted to Q8_0 if candle multiplies its block type slowly (and its rows
/// are whole Q8_0 blocks).
///
/// # Errors
///
/// When candle fails to convert it.
pub fn requantize(tensor: QTensor) -> candle_core::Result<QTensor> {
    let row = tensor.shape().dims().last().copied().unwrap_or(0);
    if needs_requantizing(tensor.dtype()) && row % GgmlDType::Q8_0.block_size() == 0 {
        QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)
    } else {
        Ok(tensor)
    }
}

/// The model with its slow-to-multiply weights converted to Q8_0, as an in-memory GGUF
/// (for candle's own model, which the tests compare with).
#[cfg(test)]
pub fn requantized(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
) -> Result<std::io::Cursor<Vec<u8>>, ModelError> {
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let tensor = content
            .tensor(file, name, &Device::Cpu)
            .and_then(requantize)
            .map_err(|e| ModelError::Stream(format!("requantizing the model: {e}")))?;
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
        .map_err(|e| ModelError::Stream(format!("requantizing the model: {e}")))?;
    out.set_position(0);
    Ok(out)
}
