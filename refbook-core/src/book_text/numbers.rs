//! Numbers as headings and questions write them: digits (ASCII or full-width), Chinese
//! numerals, Roman numerals, English words.

/// A number written in digits (ASCII or full-width), Chinese numerals (`二十七`, `一百零五`,
/// `一〇五`), Roman numerals or English words.
pub(super) fn number(text: &str) -> Option<u32> {
    let digits: String = text
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')),
            _ => Some(c),
        })
        .collect::<Option<_>>()?;
    if let Ok(n) = digits.parse::<u32>() {
        return Some(n);
    }
    chinese_number(text)
        .or_else(|| roman_number(text))
        .or_else(|| english_number(text))
        .filter(|n| *n > 0)
}

fn chinese_digit(c: char) -> Option<u32> {
    Some(match c {
        '零' | '〇' => 0,
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn chinese_number(text: &str) -> Option<u32> {
    let has_units = text.chars().any(|c| matches!(c, '十' | '百' | '千'));
    let (mut total, mut digit) = (0u32, 0u32);
    for c in text.chars() {
        if let Some(d) = chinese_digit(c) {
            digit = if has_units { d } else { digit * 10 + d };
            continue;
        }
        let unit = match c {
            '十' => 10,
            '百' => 100,
            '千' => 1000,
            _ => return None,
        };
        total += digit.max(1) * unit;
        digit = 0;
    }
    Some(total + digit)
}

fn roman_number(text: &str) -> Option<u32> {
    let values: Vec<u32> = text
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            'i' => Some(1),
            'v' => Some(5),
            'x' => Some(10),
            'l' => Some(50),
            'c' => Some(100),
            'd' => Some(500),
            'm' => Some(1000),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let mut total = 0i64;
    for (at, value) in values.iter().enumerate() {
        let value = i64::from(*value);
        match values.get(at + 1) {
            Some(next) if i64::from(*next) > value => total -= value,
            _ => total += value,
        }
    }
    u32::try_from(total).ok()
}

fn english_number(text: &str) -> Option<u32> {
    const WORDS: [(&str, &str); 12] = [
        ("one", "first"),
        ("two", "second"),
        ("three", "third"),
        ("four", "fourth"),
        ("five", "fifth"),
        ("six", "sixth"),
        ("seven", "seventh"),
        ("eight", "eighth"),
        ("nine", "ninth"),
        ("ten", "tenth"),
        ("eleven", "eleventh"),
        ("twelve", "twelfth"),
    ];
    let lower = text.to_ascii_lowercase();
    WORDS
        .iter()
        .zip(1..)
        .find(|((cardinal, ordinal), _)| lower == *cardinal || lower == *ordinal)
        .map(|(_, n)| n)
}
