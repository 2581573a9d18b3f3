//! [`KvCache`]: the keys and values a decoder has computed, held outside the weights so a
//! prompt's beginning can be kept after an answer and resumed by the next.

use candle_core::Tensor;

use crate::llm::ModelError;

/// The keys and values of the tokens processed so far, one pair per layer, each a buffer
/// shaped `(1, key_value_heads, capacity, head_dim)` of which the first `len` positions
/// are filled. New tokens are written in place (no copy of the whole cache per token);
/// the buffers grow by half when full. Another request continues from it only through a
/// copy ([`KvCache::truncated`], [`KvCache::compacted`]), never by sharing its buffers.
#[derive(Debug, Default)]
pub struct KvCache {
    pub(super) layers: Vec<(Tensor, Tensor)>,
    pub(super) len: usize,
    /// Positions its buffers are made for when first made or grown (the request's prompt
    /// and reply together), so that an answer allocates them once instead of growing.
    pub(super) room: usize,
}

/// Buffers grow in multiples of this many positions.
const GROWTH: usize = 256;

impl KvCache {
    /// The tokens it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Makes the buffers, when they are made or grown, hold `positions` positions at
    /// least (the whole answer: its prompt and its longest reply).
    pub fn reserve(&mut self, positions: usize) {
        self.room = positions;
    }

    /// A copy of its first `len` tokens, in buffers of its own with room for `positions`
    /// positions (at least `len` and a little more).
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when `len` is more than it holds.
    pub fn truncated(&self, len: usize, positions: usize) -> Result<Self, ModelError> {
        if len > self.len {
            return Err(ModelError::Stream(format!(
                "a cache of {} tokens cannot give {len}",
                self.len
            )));
        }
        if len == 0 {
            return Ok(Self {
                room: positions,
                ..Self::default()
            });
        }
        let capacity = positions.max(len + GROWTH);
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| Ok((regrown(k, len, capacity)?, regrown(v, len, capacity)?)))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(failed)?;
        Ok(Self {
            layers,
            len,
            room: positions,
        })
    }

    /// A copy of what it holds in buffers of just that size (for keeping: no room to
    /// grow, no memory shared with a cache still being written).
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the copy fails.
    pub fn compacted(&self) -> Result<Self, ModelError> {
        let exact = |t: &Tensor| t.narrow(2, 0, self.len)?.contiguous();
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| Ok((exact(k)?, exact(v)?)))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(failed)?;
        Ok(Self {
            layers,
            len: self.len,
            room: 0,
        })
    }

    /// The memory [`compacted`](Self::compacted) would take, in bytes.
    pub fn compacted_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|(k, v)| {
                let per_position = |t: &Tensor| {
                    t.elem_count() / t.dim(2).unwrap_or(1).max(1) * t.dtype().size_in_bytes()
                };
                (per_position(k) + per_position(v)) * self.len
            })
            .sum()
    }

    /// The memory its buffers take, in bytes.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|(k, v)| (k.elem_count() + v.elem_count()) * k.dtype().size_in_bytes())
            .sum()
    }
}

/// A new buffer of `capacity` positions holding the first `len` of `buffer`.
fn regrown(buffer: &Tensor, len: usize, capacity: usize) -> candle_core::Result<Tensor> {
    let (batch, heads, _, dim) = buffer.dims4()?;
    let kept = buffer.narrow(2, 0, len)?;
    let room = capacity.next_multiple_of(GROWTH) - len;
    let empty = Tensor::zeros((batch, heads, room, dim), buffer.dtype(), buffer.device())?;
    Tensor::cat(&[&kept, &empty], 2)?.contiguous()
}

/// Writes `new` (`(1, heads, count, dim)`) at `position` of `buffer` (a new one, or a
/// grown copy, when it lacks room; made for `room` positions at least) and gives the
/// buffer and its filled part.
pub(super) fn append(
    buffer: Option<Tensor>,
    new: &Tensor,
    position: usize,
    room: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let end = position + new.dim(2)?;
    let buffer = match buffer {
        Some(buffer) if buffer.dim(2)? >= end => buffer,
        Some(buffer) => regrown(&buffer, position, (end + end / 2).max(room))?,
        None => regrown(new, 0, (end + GROWTH).max(room))?,
    };
    buffer.slice_set(new, 2, position)?;
    let filled = buffer.narrow(2, 0, end)?;
    Ok((buffer, filled))
}

/// A candle failure as the model's error.
pub(super) fn failed(err: candle_core::Error) -> ModelError {
    ModelError::Stream(format!("the model failed: {err}"))
}
