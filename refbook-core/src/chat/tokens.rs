//! Token estimates, for history budgets and for usage when the upstream sends none (the
//! estimate itself is [`crate::tokens`]'), and their calibration against the model's own
//! counts.

pub use crate::tokens::{estimate_tokens, prefix_within, MESSAGE_OVERHEAD};

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
