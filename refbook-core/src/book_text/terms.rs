//! The terms a text is searched by: Latin-script words (letters and digits, lower-cased,
//! unstemmed), and for Chinese each character and each pair of neighbouring characters —
//! so a two-character name (黛玉) is one term, a one-character word (仁) is found, and
//! classical Chinese, which a modern word dictionary segments badly, is searched as well
//! as modern prose. Traditional characters are folded into simplified ones first (OpenCC's
//! character table, by `fast2s`), so a reader asking in one script finds a text printed in
//! the other (孟子's 「民為貴」 for 民为贵); the text itself is never changed.

use super::chunks::is_cjk;

/// `text` with its traditional Chinese characters folded into simplified ones, for
/// matching only (what a reader is shown keeps its own script).
pub fn fold_script(text: &str) -> String {
    fast2s::convert(text)
}

/// The terms of `text`, in order, repeats kept.
pub fn terms(text: &str) -> Vec<String> {
    let folded = fold_script(text);
    let mut out = Vec::new();
    let mut word = String::new();
    let mut previous_cjk: Option<char> = None;
    for c in folded.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(c.to_string());
            if let Some(before) = previous_cjk {
                out.push([before, c].iter().collect());
            }
            previous_cjk = Some(c);
            continue;
        }
        previous_cjk = None;
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if c == '\'' || c == '’' {
            // "Darcy's": the possessive is part of no word.
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_characters_and_pairs() {
        assert_eq!(terms("Mr. Darcy's BALL"), ["mr", "darcy", "s", "ball"]);
        assert_eq!(
            terms("黛玉葬花"),
            ["黛", "玉", "黛玉", "葬", "玉葬", "花", "葬花"]
        );
        assert_eq!(
            terms("子曰：学而"),
            ["子", "曰", "子曰", "学", "而", "学而"]
        );
        assert_eq!(terms("第3回Hi"), ["第", "3", "回", "hi"]);
    }

    #[test]
    fn either_script_gives_the_same_terms() {
        assert_eq!(terms("民為貴，社稷次之"), terms("民为贵，社稷次之"));
        assert_eq!(
            terms("學而時習之"),
            ["学", "而", "学而", "时", "而时", "习", "时习", "之", "习之"]
        );
        assert_ne!(terms("黛玉"), terms("宝钗"));
    }
}
