//! Token estimates, for prompt budgets (chat, guides) and for usage when the upstream
//! sends none.
//!
//! BPE tokenizers of current models spend roughly one token per CJK character (often a
//! little less) and one per three to four characters of English; the estimate errs high.

/// Whether `c` is written as roughly one token (CJK ideographs, kana, hangul, full-width
/// forms and CJK punctuation).
fn is_dense(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F   // CJK punctuation
        | 0x3040..=0x30FF // kana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xAC00..=0xD7AF // hangul
        | 0xF900..=0xFAFF // compatibility ideographs
        | 0xFF00..=0xFFEF // full-width forms
        | 0x20000..=0x2FFFF)
}

/// Estimated tokens of `text`.
pub fn estimate_tokens(text: &str) -> i64 {
    let (dense, other) = text.chars().fold((0i64, 0i64), |(d, o), c| {
        if is_dense(c) {
            (d + 1, o)
        } else {
            (d, o + 1)
        }
    });
    dense + (other + 3) / 4
}

/// The byte length of the longest prefix of `text` estimated at most `tokens` tokens
/// (the same estimate as [`estimate_tokens`], counted in one pass).
pub fn prefix_within(text: &str, tokens: i64) -> usize {
    let (mut dense, mut other) = (0i64, 0i64);
    for (at, c) in text.char_indices() {
        if is_dense(c) {
            dense += 1;
        } else {
            other += 1;
        }
        if dense + (other + 3) / 4 > tokens {
            return at;
        }
    }
    text.len()
}

/// Tokens a chat message costs beyond its text (role and separators).
pub const MESSAGE_OVERHEAD: i64 = 4;

/// Whether `text` is mostly written in a CJK script (at least a third of its letters).
pub fn mostly_cjk(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphanumeric()).count();
    let dense = text
        .chars()
        .filter(|c| is_dense(*c) && c.is_alphanumeric())
        .count();
    letters > 0 && dense * 3 >= letters
}

/// Estimated prompt tokens.
pub fn estimate_prompt(messages: &[crate::llm::PromptMessage]) -> i64 {
    messages
        .iter()
        .map(|m| estimate_tokens(&m.content) + MESSAGE_OVERHEAD)
        .sum()
}
