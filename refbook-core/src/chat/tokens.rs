//! Token estimates, for history budgets and for usage when the upstream sends none.
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

/// Tokens a chat message costs beyond its text (role and separators).
pub const MESSAGE_OVERHEAD: i64 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_counts_per_character_english_per_four() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("三体"), 2);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("Who wrote this book?"), 5);
        assert_eq!(estimate_tokens("《三体》的作者是谁？"), 10);
        assert!(estimate_tokens("刘慈欣 wrote 三体") >= 5);
    }
}
