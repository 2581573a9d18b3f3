//! How keyword and meaning rankings are combined: weighted reciprocal rank fusion, with the
//! meaning side weighed down (it helps on paraphrases, but blind fusion of a weaker ranker
//! pulls good keyword hits down) and left out when the embedder cannot read the question.
//! At weight 0.1 the meaning side reorders the keyword ranking's first few (its first
//! choice can rise from the keyword ranking's seventh place to the first), and a passage
//! only it found comes after every passage the keywords found within the depth read.
//! The weight and the threshold were chosen on the retrieval evaluation in benches/
//! (docs/GROUNDING.md has the figures).

use std::collections::HashMap;
use std::ops::Range;

use super::dense::DenseIndex;
use super::index::{Bm25Index, Hit};

/// The constant of reciprocal rank fusion (the usual 60).
pub const RRF_K: f32 = 60.0;
/// The weight of the meaning ranking beside the keyword ranking's 1.
pub const DENSE_WEIGHT: f32 = 0.1;
/// The least share of a question's tokens the embedder must know for its ranking to count.
pub const MIN_KNOWN_SHARE: f32 = 0.9;
/// How deep each ranking is read before fusion, at least.
pub const FUSION_DEPTH: usize = 50;

/// The passages of a book for `query` among the chunks of `within` (the others are never
/// returned: a reader's progress and a named section are hard limits), best first, at
/// most `limit`: the keyword ranking alone (with its BM25 scores), or fused with the
/// meaning ranking when `meaning` brings the book's vectors and the question's vector
/// (the caller leaves it out when the embedder cannot read the question: see
/// [`MIN_KNOWN_SHARE`]).
pub fn rank(
    keyword: &Bm25Index,
    meaning: Option<(&DenseIndex, &[f32])>,
    query: &str,
    limit: usize,
    within: Range<usize>,
) -> Vec<Hit> {
    let depth = limit.max(FUSION_DEPTH);
    match meaning {
        None => keyword.search_in(query, limit, within),
        Some((vectors, question)) => fuse(
            &keyword.search_in(query, depth, within.clone()),
            &vectors.search_in(question, depth, within),
            DENSE_WEIGHT,
            limit,
        ),
    }
}

/// The fused ranking of `keyword` and `meaning` (each best first), `meaning` weighed by
/// `weight`; the best `limit`, with their fused scores.
pub fn fuse(keyword: &[Hit], meaning: &[Hit], weight: f32, limit: usize) -> Vec<Hit> {
    let mut scores: HashMap<usize, f32> = HashMap::new();
    for (ranking, w) in [(keyword, 1.0), (meaning, weight)] {
        if w <= 0.0 {
            continue;
        }
        for (rank, hit) in ranking.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let score = w / (RRF_K + rank as f32 + 1.0);
            *scores.entry(hit.chunk).or_insert(0.0) += score;
        }
    }
    let mut fused: Vec<Hit> = scores
        .into_iter()
        .map(|(chunk, score)| Hit { chunk, score })
        .collect();
    fused.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk.cmp(&b.chunk)));
    fused.truncate(limit);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(chunks: &[usize]) -> Vec<Hit> {
        chunks
            .iter()
            .map(|&chunk| Hit { chunk, score: 1.0 })
            .collect()
    }

    #[test]
    fn agreement_rises_and_the_keywords_stay_ahead_of_what_only_meaning_found() {
        let fused = fuse(&hits(&[1, 2, 3]), &hits(&[2, 9, 3]), 1.0, 3);
        assert_eq!(
            fused[0].chunk, 2,
            "second in one and first in the other leads"
        );
        let light = fuse(&hits(&[1, 2, 3]), &hits(&[3, 9]), DENSE_WEIGHT, 4);
        assert_eq!(
            light.iter().map(|h| h.chunk).collect::<Vec<_>>(),
            [3, 1, 2, 9],
            "the meaning side's first choice rises from third; what only it found comes last"
        );
        assert_eq!(
            fuse(&hits(&[4, 5]), &hits(&[6]), 0.0, 5)
                .iter()
                .map(|h| h.chunk)
                .collect::<Vec<_>>(),
            [4, 5]
        );
    }
}
