//! [`Linear`]: a weight matrix times a batch of rows. Q8_0 weights (SmolLM2's Q4_1 is
//! converted to them at load) are multiplied in tiles: each task takes a few output
//! columns and runs every input row past them while their blocks sit in the CPU's cache.
//! Candle multiplies one input row at a time, streaming all of the weights from memory
//! for each row, so a prompt of N tokens costs N passes over the model; here it costs
//! one. Each product is candle's own SIMD dot product of the same blocks, so the results
//! are the same bits as candle's. Other block types use candle's product.

use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use rayon::prelude::*;

/// Output columns one task takes.
const COLUMNS_PER_TASK: usize = 16;

/// A weight matrix `(outputs, inputs)`.
pub enum Linear {
    /// Q8_0 blocks, row by row (one row per output).
    Q8 {
        blocks: Vec<BlockQ8_0>,
        outputs: usize,
        inputs: usize,
    },
    /// Any other block type, multiplied by candle.
    Candle(QMatMul),
}

impl Linear {
    /// The matrix `weights` holds.
    ///
    /// # Errors
    ///
    /// When candle cannot read it.
    pub fn new(weights: QTensor) -> candle_core::Result<Self> {
        let (outputs, inputs) = weights.shape().dims2()?;
        if weights.dtype() != GgmlDType::Q8_0 || inputs % BlockQ8_0::BLCK_SIZE != 0 {
            return QMatMul::from_qtensor(weights).map(Self::Candle);
        }
        // Block by block from the file's bytes (2 bytes of f16 scale, 32 signed bytes),
        // so no f32 copy of the matrix is ever made. Re-quantizing a block's values gives
        // back that block; should one differ, the file's own blocks are kept (with
        // candle's product).
        let bytes = weights.data()?;
        let size = 2 + BlockQ8_0::BLCK_SIZE;
        if bytes.len() != outputs * inputs / BlockQ8_0::BLCK_SIZE * size {
            return QMatMul::from_qtensor(weights).map(Self::Candle);
        }
        let mut blocks = vec![BlockQ8_0::zeros(); bytes.len() / size];
        let (mut values, mut again) = ([0f32; 32], [0f32; 32]);
        for (block, raw) in blocks.iter_mut().zip(bytes.chunks_exact(size)) {
            let scale = f16_to_f32(u16::from_le_bytes([raw[0], raw[1]]));
            for (value, &q) in values.iter_mut().zip(&raw[2..]) {
                *value = scale * f32::from(q as i8);
            }
            BlockQ8_0::from_float(&values, std::slice::from_mut(block));
            BlockQ8_0::to_float(std::slice::from_ref(block), &mut again);
            if again != values {
                return QMatMul::from_qtensor(weights).map(Self::Candle);
            }
        }
        Ok(Self::Q8 {
            blocks,
            outputs,
            inputs,
        })
    }

    /// `x · weightsᵀ` for `x` shaped `(…, inputs)`.
    ///
    /// # Errors
    ///
    /// When `x` does not end in `inputs` or candle fails.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (blocks, outputs, inputs) = match self {
            Self::Candle(matmul) => return matmul.forward(x),
            Self::Q8 {
                blocks,
                outputs,
                inputs,
            } => (blocks, *outputs, *inputs),
        };
        let mut shape = x.dims().to_vec();
        if shape.last() != Some(&inputs) {
            candle_core::bail!("a product of {shape:?} with ({outputs}, {inputs})");
        }
        let values = x.flatten_all()?.to_vec1::<f32>()?;
        let rows = values.len() / inputs;
        let per_row = inputs / BlockQ8_0::BLCK_SIZE;
        let mut quantized = vec![BlockQ8_0::zeros(); rows * per_row];
        quantized
            .par_chunks_mut(per_row)
            .zip(values.par_chunks(inputs))
            .for_each(|(row, values)| BlockQ8_0::from_float(values, row));
        // Column-major while computing: each task fills its columns for every row.
        let mut columns = vec![0f32; outputs * rows];
        columns
            .par_chunks_mut(COLUMNS_PER_TASK * rows)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * COLUMNS_PER_TASK;
                for (c, out) in out.chunks_mut(rows).enumerate() {
                    let column = first + c;
                    let weights = &blocks[column * per_row..(column + 1) * per_row];
                    for (row, out) in out.iter_mut().enumerate() {
                        let input = &quantized[row * per_row..(row + 1) * per_row];
                        *out = BlockQ8_0::vec_dot(inputs, weights, input);
                    }
                }
            });
        let product = if rows == 1 {
            Tensor::from_vec(columns, outputs, &Device::Cpu)?
        } else {
            Tensor::from_vec(columns, (outputs, rows), &Device::Cpu)?
                .t()?
                .contiguous()?
        };
        if let Some(last) = shape.last_mut() {
            *last = outputs;
        }
        product.reshape(shape)
    }
}

/// An IEEE half-precision number's value.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f32::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f32.powi(-24),
        31 if fraction == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        _ => sign * (1.0 + fraction / 1024.0) * 2f32.powi(exponent - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_values_are_read() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0x0000), 0.0);
    }
}
