//! [`PrefixCache`]: the key/value caches of recent prompts (and the replies generated
//! after them), so the next question of a conversation — whose prompt begins with the
//! previous one's — processes only what is new since.
//!
//! Entries are keyed by their exact tokens: a question resumes from the longest cached
//! beginning of its own prompt, cut back to where the two first differ. A history that was
//! regenerated, edited or deleted therefore cannot be reused (its tokens differ), and a
//! cached run computes what a cold run computes. Memory is bounded: least recently used
//! entries go first.

use super::transformer::KvCache;
use crate::llm::ModelError;

struct Entry {
    tokens: Vec<u32>,
    kv: KvCache,
    used: u64,
}

/// What a resumed prompt found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reuse {
    /// The prompt's tokens taken from the cache.
    pub cached: usize,
    /// The prompt's tokens left to process.
    pub computed: usize,
}

/// Recent prompts' key/value caches, within a memory bound.
pub struct PrefixCache {
    entries: Vec<Entry>,
    /// For the entries and the answer in progress together.
    bound: usize,
    /// The answer in progress's own key/value buffers.
    working: usize,
    clock: u64,
}

impl PrefixCache {
    /// An empty cache holding at most `bound` bytes of keys and values, less what the answer
    /// in progress takes (0: keeps nothing).
    pub fn new(bound: usize) -> Self {
        Self {
            entries: Vec::new(),
            bound,
            working: 0,
            clock: 0,
        }
    }

    /// A cache to continue `tokens` from: the longest cached beginning of them, cut back
    /// to a multiple of `step` (prompts are processed in steps of `step` tokens from
    /// position 0, so a resumed prompt's steps are the very ones a cold run takes, and
    /// computes the same bits) and never the whole (the last token is always processed,
    /// for its logits); empty when nothing matches. Its buffers are made for `positions`
    /// positions (the prompt and the longest reply).
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when a cached entry cannot be cut back (a bug).
    pub fn resume(
        &mut self,
        tokens: &[u32],
        step: usize,
        positions: usize,
    ) -> Result<(KvCache, Reuse), ModelError> {
        let limit = tokens.len().saturating_sub(1);
        let step = step.max(1);
        let best = self
            .entries
            .iter_mut()
            .map(|entry| {
                let shared = common_prefix(&entry.tokens, tokens)
                    .min(limit)
                    .min(entry.kv.len());
                (shared - shared % step, entry)
            })
            .filter(|(shared, _)| *shared > 0)
            .max_by_key(|(shared, entry)| (*shared, entry.used));
        let Some((shared, entry)) = best else {
            let mut empty = KvCache::default();
            empty.reserve(positions);
            return Ok((
                empty,
                Reuse {
                    cached: 0,
                    computed: tokens.len(),
                },
            ));
        };
        self.clock += 1;
        entry.used = self.clock;
        let kv = entry.kv.truncated(shared, positions)?;
        Ok((
            kv,
            Reuse {
                cached: shared,
                computed: tokens.len() - shared,
            },
        ))
    }

    /// Keeps a copy of `kv`, the cache of the first `kv.len()` of `tokens`, just its size.
    /// Entries it extends are dropped (it answers for them); if an entry already extends
    /// it, nothing changes but that entry's recency. Room is made before the copy, so the
    /// entries and the answer in progress never hold more than the bound, even for a
    /// moment; a prompt too big to keep beside the answer in progress is not kept.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the copy fails.
    pub fn keep(&mut self, tokens: &[u32], kv: &KvCache) -> Result<(), ModelError> {
        let Some(tokens) = tokens.get(..kv.len()) else {
            return Ok(());
        };
        if tokens.is_empty() || self.bound == 0 {
            return Ok(());
        }
        self.clock += 1;
        if let Some(longer) = self
            .entries
            .iter_mut()
            .find(|e| e.tokens.len() >= tokens.len() && e.tokens.starts_with(tokens))
        {
            longer.used = self.clock;
            return Ok(());
        }
        let room = self.bound.saturating_sub(self.working);
        let incoming = kv.compacted_bytes();
        if incoming > room {
            return Ok(());
        }
        self.entries.retain(|e| !tokens.starts_with(&e.tokens));
        self.make_room(room - incoming);
        self.entries.push(Entry {
            tokens: tokens.to_vec(),
            kv: kv.compacted()?,
            used: self.clock,
        });
        Ok(())
    }

    /// Counts `bytes` of key/value buffers for the answer in progress against the bound
    /// (least recently used entries go to make room for them); 0 when it ends.
    pub fn set_working(&mut self, bytes: usize) {
        self.working = bytes;
        self.make_room(self.bound.saturating_sub(bytes));
    }

    /// The bytes counted for answers in progress.
    pub fn working(&self) -> usize {
        self.working
    }

    /// Drops least recently used entries until they hold at most `bytes`.
    fn make_room(&mut self, bytes: usize) {
        while self.bytes() > bytes {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map(|(i, _)| i)
            else {
                return;
            };
            self.entries.swap_remove(oldest);
        }
    }

    /// The memory its entries take, in bytes.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.kv.bytes()).sum()
    }

    /// How many prompts it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
