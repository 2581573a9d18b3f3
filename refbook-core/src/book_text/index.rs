//! [`Bm25Index`]: keyword search over a book's chunks, in memory. Okapi BM25 (k1 = 1.2,
//! b = 0.75) over [`terms`](super::terms); each distinct query term counts once.

use std::collections::HashMap;
use std::ops::Range;

use super::terms::terms;

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// One chunk found, by its position in the list the index was built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The chunk's position.
    pub chunk: usize,
    /// Its BM25 score (higher is better).
    pub score: f32,
}

/// The BM25 index of one book's chunks.
#[derive(Debug, Default)]
pub struct Bm25Index {
    /// Term → its id.
    ids: HashMap<Box<str>, u32>,
    /// Term id → `(chunk, occurrences)` in chunk order.
    postings: Vec<Vec<(u32, u32)>>,
    /// Each chunk's length in terms.
    lengths: Vec<u32>,
    average_length: f32,
}

impl Bm25Index {
    /// The index of `chunks` (their texts, in order).
    pub fn build<'a>(chunks: impl IntoIterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for (chunk, text) in chunks.into_iter().enumerate() {
            let chunk = u32::try_from(chunk).unwrap_or(u32::MAX);
            let mut counts: HashMap<u32, u32> = HashMap::new();
            let found = terms(text);
            for term in &found {
                let next = u32::try_from(index.postings.len()).unwrap_or(u32::MAX);
                let id = *index.ids.entry(term.as_str().into()).or_insert(next);
                if id == next {
                    index.postings.push(Vec::new());
                }
                *counts.entry(id).or_insert(0) += 1;
            }
            let mut counts: Vec<_> = counts.into_iter().collect();
            counts.sort_unstable();
            for (id, count) in counts {
                index.postings[id as usize].push((chunk, count));
            }
            index
                .lengths
                .push(u32::try_from(found.len()).unwrap_or(u32::MAX));
        }
        let total: u64 = index.lengths.iter().map(|l| u64::from(*l)).sum();
        index.average_length = total as f32 / index.lengths.len().max(1) as f32;
        index
    }

    /// How many chunks it holds.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// About how many bytes it takes in memory.
    pub fn memory_bytes(&self) -> usize {
        let terms: usize = self.ids.keys().map(|t| t.len() + 32).sum();
        let postings: usize = self.postings.iter().map(|p| p.len() * 8 + 24).sum();
        terms + postings + self.lengths.len() * 4
    }

    /// The best `limit` chunks for `query`, best first (ties: earlier chunk first); no
    /// chunk that shares no term with the query.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        self.search_in(query, limit, 0..self.len())
    }

    /// [`search`](Self::search) among the chunks of `within` only (the rest are never
    /// returned, however well they match).
    pub fn search_in(&self, query: &str, limit: usize, within: Range<usize>) -> Vec<Hit> {
        let mut wanted = terms(query);
        wanted.sort_unstable();
        wanted.dedup();
        let count = self.lengths.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in wanted {
            let Some(id) = self.ids.get(term.as_str()) else {
                continue;
            };
            let postings = &self.postings[*id as usize];
            let with = postings.len() as f32;
            let idf = ((count - with + 0.5) / (with + 0.5) + 1.0).ln();
            for (chunk, occurrences) in postings {
                if !within.contains(&(*chunk as usize)) {
                    continue;
                }
                let tf = *occurrences as f32;
                let length = self.lengths[*chunk as usize] as f32;
                let norm = K1 * (1.0 - B + B * length / self.average_length.max(1.0));
                *scores.entry(*chunk).or_insert(0.0) += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut hits: Vec<Hit> = scores
            .into_iter()
            .map(|(chunk, score)| Hit {
                chunk: chunk as usize,
                score,
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk.cmp(&b.chunk)));
        hits.truncate(limit);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_with_the_rare_words_ranks_first() {
        let chunks = [
            "宝玉来到潇湘馆，黛玉正在葬花。",
            "宝钗在蘅芜苑读书。",
            "宝玉和宝钗说话。",
            "It is a truth universally acknowledged.",
        ];
        let index = Bm25Index::build(chunks);
        assert_eq!(index.len(), 4);
        let hits = index.search("黛玉在哪里葬花？", 5);
        assert_eq!(hits[0].chunk, 0);
        assert!(hits.iter().all(|h| h.chunk != 3));
        assert_eq!(index.search("TRUTH acknowledged", 5)[0].chunk, 3);
        assert!(index.search("nothing here", 5).is_empty());
        assert_eq!(index.search("宝", 2).len(), 2);
        let within = index.search_in("宝玉 宝钗", 5, 1..3);
        assert_eq!(within.len(), 2);
        assert!(within.iter().all(|h| (1..3).contains(&h.chunk)));
    }
}
