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

/// How far the estimate is from the model's own count: the ratio of the prompt tokens the
/// model reported to those estimated, smoothed over recent replies. Starts a little
/// above 1 (the estimate is known to undercount some tokenizers by about a sixth) and
/// never goes below 1, so budgets err on the safe side.
#[derive(Debug)]
pub struct Calibration {
    /// The ratio as `f64` bits.
    ratio: std::sync::atomic::AtomicU64,
}

impl Default for Calibration {
    fn default() -> Self {
        Self {
            ratio: std::sync::atomic::AtomicU64::new(1.25_f64.to_bits()),
        }
    }
}

impl Calibration {
    /// The current ratio (multiply estimates by it).
    pub fn ratio(&self) -> f64 {
        f64::from_bits(self.ratio.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Learns from one reply: `estimated` prompt tokens that the model counted as
    /// `reported`.
    pub fn observe(&self, estimated: i64, reported: i64) {
        if estimated <= 0 || reported <= 0 {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let seen = reported as f64 / estimated as f64;
        // A little headroom over what was seen, kept between 1 and 4.
        let next = (0.7 * self.ratio() + 0.3 * seen * 1.05).clamp(1.0, 4.0);
        self.ratio
            .store(next.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }
}

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

    #[test]
    fn the_longest_prefix_within_a_budget() {
        let text = "三体abcdefgh";
        let end = prefix_within(text, 3);
        assert!(estimate_tokens(&text[..end]) <= 3);
        assert!(estimate_tokens(&text[..end + 1]) > 3);
        assert_eq!(prefix_within(text, 100), text.len());
        assert_eq!(prefix_within(text, 0), 0);
    }

    #[test]
    fn calibration_follows_the_model_and_stays_safe() {
        let calibration = Calibration::default();
        assert!(calibration.ratio() > 1.0);
        for _ in 0..20 {
            calibration.observe(100, 200);
        }
        assert!(
            (calibration.ratio() - 2.1).abs() < 0.05,
            "{}",
            calibration.ratio()
        );
        for _ in 0..40 {
            calibration.observe(100, 50);
        }
        assert!((calibration.ratio() - 1.0).abs() < 1e-9);
        calibration.observe(0, 10);
        assert!((calibration.ratio() - 1.0).abs() < 1e-9);
    }
}
