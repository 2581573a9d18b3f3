//! The terms a text is searched by: Latin-script words (letters and digits, lower-cased,
//! unstemmed), and for Chinese each character and each pair of neighbouring characters —
//! so a two-character name (黛玉) is one term, a one-character word (仁) is found, and
//! classical Chinese, which a modern word dictionary segments badly, is searched as well
//! as modern prose.

use super::chunks::is_cjk;

/// The terms of `text`, in order, repeats kept.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut previous_cjk: Option<char> = None;
    for c in text.chars() {
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
}
