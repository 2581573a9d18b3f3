//! [`DenseIndex`]: a book's chunk vectors in one flat array, searched exhaustively by dot
//! product (the vectors are unit length, so it is their cosine). A 1 MB book has a few
//! thousand chunks: a scan is well under a millisecond and needs no approximate index.

use std::ops::Range;

use super::index::Hit;

/// The vectors of one book's chunks, in chunk order.
#[derive(Debug, Clone, Default)]
pub struct DenseIndex {
    dimensions: usize,
    values: Vec<f32>,
}

impl DenseIndex {
    /// The index of `vectors` (one per chunk, in order); `None` when they are not all of
    /// one non-zero length.
    pub fn new(vectors: Vec<Vec<f32>>) -> Option<Self> {
        let dimensions = vectors.first().map_or(0, Vec::len);
        if dimensions == 0 || vectors.iter().any(|v| v.len() != dimensions) {
            return None;
        }
        Some(Self {
            dimensions,
            values: vectors.into_iter().flatten().collect(),
        })
    }

    /// How many chunks it holds.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.dimensions).unwrap_or(0)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its size in memory, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<f32>()
    }

    /// The `limit` chunks nearest `query`, nearest first (none when the query's length is
    /// not the index's).
    pub fn search(&self, query: &[f32], limit: usize) -> Vec<Hit> {
        self.search_in(query, limit, 0..self.len())
    }

    /// [`search`](Self::search) among the chunks of `within` only.
    pub fn search_in(&self, query: &[f32], limit: usize, within: Range<usize>) -> Vec<Hit> {
        if query.len() != self.dimensions || limit == 0 {
            return Vec::new();
        }
        let end = within.end.min(self.len());
        let first = within.start.min(end);
        let values = &self.values[first * self.dimensions..end * self.dimensions];
        let mut hits: Vec<Hit> = values
            .chunks_exact(self.dimensions)
            .enumerate()
            .map(|(at, vector)| (first + at, vector))
            .map(|(chunk, vector)| Hit {
                chunk,
                score: vector.iter().zip(query).map(|(a, b)| a * b).sum(),
            })
            .collect();
        hits.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk.cmp(&b.chunk)));
        hits.truncate(limit);
        hits
    }
}

/// A vector as stored: little-endian `f32`s.
pub fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A stored vector read back (`None` when the bytes are not whole `f32`s).
pub fn vector_from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_vectors_come_first() {
        let index = DenseIndex::new(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.6, 0.8]])
            .expect("one length");
        let hits = index.search(&[0.0, 1.0], 2);
        assert_eq!(hits.iter().map(|h| h.chunk).collect::<Vec<_>>(), [1, 2]);
        assert!(index.search(&[1.0], 2).is_empty());
        assert!(DenseIndex::new(vec![vec![1.0], vec![1.0, 2.0]]).is_none());
    }

    #[test]
    fn vectors_survive_storage() {
        let v = vec![0.25, -1.5, 3.0e-7];
        assert_eq!(vector_from_bytes(&vector_bytes(&v)), Some(v));
        assert_eq!(vector_from_bytes(&[1, 2, 3]), None);
    }
}
