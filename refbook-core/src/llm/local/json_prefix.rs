//! Whether a text can still become one JSON object: the state of a JSON reader fed one
//! character at a time, for the local engine's constrained sampling (`json_object`).
//! Only ASCII is structural in JSON, so any other character — including the U+FFFD a
//! token ending mid-character decodes to — is taken as string content.

/// What the reader expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The beginning: whitespace, then `{`.
    Start,
    /// A value (after `:`, or `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ValueOrClose,
    /// After `{`: a key or `}`.
    KeyOrClose,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or its close.
    CommaOrClose,
    /// Inside a string: a key's or a value's; after a backslash; `\u` digits left.
    InString { key: bool, escape: bool, hex: u8 },
    /// Inside a number.
    Number(NumberPart),
    /// Inside `true`, `false` or `null`: the letters still to come.
    Literal(&'static [u8]),
    /// The object is closed.
    Done,
}

/// How far a number has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberPart {
    Minus,
    Zero,
    Int,
    Dot,
    Fraction,
    Exponent,
    ExponentSign,
    ExponentDigits,
}

/// The most whitespace in a row outside strings (a model that only indents is stopped).
const MAX_SPACES: u8 = 32;

/// A JSON reader's state: the text fed so far is the beginning of one JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonPrefix {
    /// The open containers, `{` or `[`, innermost last.
    open: Vec<u8>,
    expect: Expect,
    spaces: u8,
}

impl Default for JsonPrefix {
    fn default() -> Self {
        Self {
            open: Vec::new(),
            expect: Expect::Start,
            spaces: 0,
        }
    }
}

impl JsonPrefix {
    /// Whether the object is closed (nothing may follow).
    pub(super) fn is_done(&self) -> bool {
        self.expect == Expect::Done
    }

    /// The state after `text`, or `None` when `text` (non-empty) cannot follow.
    pub(super) fn after(&self, text: &str) -> Option<Self> {
        if text.is_empty() {
            return None;
        }
        let mut next = self.clone();
        text.chars().all(|c| next.push(c)).then_some(next)
    }

    /// What a value just ended leaves: the container's `,` or close, or the end.
    fn value_ended(&mut self) {
        self.expect = if self.open.is_empty() {
            Expect::Done
        } else {
            Expect::CommaOrClose
        };
    }

    fn close(&mut self, c: char) -> bool {
        let wanted = if c == '}' { b'{' } else { b'[' };
        if self.open.pop() != Some(wanted) {
            return false;
        }
        self.value_ended();
        true
    }

    fn start_value(&mut self, c: char) -> bool {
        self.expect = match c {
            '{' => {
                self.open.push(b'{');
                Expect::KeyOrClose
            }
            '[' => {
                self.open.push(b'[');
                Expect::ValueOrClose
            }
            '"' => Expect::InString {
                key: false,
                escape: false,
                hex: 0,
            },
            '-' => Expect::Number(NumberPart::Minus),
            '0' => Expect::Number(NumberPart::Zero),
            '1'..='9' => Expect::Number(NumberPart::Int),
            't' => Expect::Literal(b"rue"),
            'f' => Expect::Literal(b"alse"),
            'n' => Expect::Literal(b"ull"),
            _ => return false,
        };
        true
    }

    /// Feeds one character; `false` when it cannot follow (the state is then spoiled).
    fn push(&mut self, c: char) -> bool {
        let outside_string = !matches!(self.expect, Expect::InString { .. });
        if outside_string && matches!(c, ' ' | '\n' | '\r' | '\t') {
            if let Expect::Number(part) = self.expect {
                if !self.end_number(part) {
                    return false;
                }
            }
            if matches!(self.expect, Expect::Literal(_) | Expect::Done) {
                return false;
            }
            self.spaces += 1;
            return self.spaces <= MAX_SPACES;
        }
        self.spaces = 0;
        match self.expect {
            Expect::Start => c == '{' && self.start_value(c),
            Expect::Value => self.start_value(c),
            Expect::ValueOrClose => {
                if c == ']' {
                    self.close(c)
                } else {
                    self.start_value(c)
                }
            }
            Expect::KeyOrClose | Expect::Key => match c {
                '"' => {
                    self.expect = Expect::InString {
                        key: true,
                        escape: false,
                        hex: 0,
                    };
                    true
                }
                '}' if self.expect == Expect::KeyOrClose => self.close(c),
                _ => false,
            },
            Expect::Colon => {
                self.expect = Expect::Value;
                c == ':'
            }
            Expect::CommaOrClose => match c {
                ',' => {
                    self.expect = if self.open.last() == Some(&b'{') {
                        Expect::Key
                    } else {
                        Expect::Value
                    };
                    true
                }
                '}' | ']' => self.close(c),
                _ => false,
            },
            Expect::InString { key, escape, hex } => self.in_string(c, key, escape, hex),
            Expect::Number(part) => self.in_number(c, part),
            Expect::Literal(rest) => match rest.split_first() {
                Some((&first, rest)) if c == char::from(first) => {
                    if rest.is_empty() {
                        self.value_ended();
                    } else {
                        self.expect = Expect::Literal(rest);
                    }
                    true
                }
                _ => false,
            },
            Expect::Done => false,
        }
    }

    fn in_string(&mut self, c: char, key: bool, escape: bool, hex: u8) -> bool {
        let string = |escape, hex| Expect::InString { key, escape, hex };
        if hex > 0 {
            self.expect = string(false, hex - 1);
            return c.is_ascii_hexdigit();
        }
        if escape {
            self.expect = match c {
                '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' => string(false, 0),
                'u' => string(false, 4),
                _ => return false,
            };
            return true;
        }
        match c {
            '"' if key => self.expect = Expect::Colon,
            '"' => self.value_ended(),
            '\\' => self.expect = string(true, 0),
            c if u32::from(c) < 0x20 => return false,
            _ => {}
        }
        true
    }

    /// Ends a number at a character that is not part of it; `false` if it cannot end.
    fn end_number(&mut self, part: NumberPart) -> bool {
        use NumberPart::{ExponentDigits, Fraction, Int, Zero};
        if !matches!(part, Zero | Int | Fraction | ExponentDigits) {
            return false;
        }
        self.value_ended();
        true
    }

    fn in_number(&mut self, c: char, part: NumberPart) -> bool {
        use NumberPart::{Dot, Exponent, ExponentDigits, ExponentSign, Fraction, Int, Minus, Zero};
        let next = match (part, c) {
            (Minus, '0') => Zero,
            (Minus, '1'..='9') | (Int, '0'..='9') => Int,
            (Zero | Int, '.') => Dot,
            (Dot | Fraction, '0'..='9') => Fraction,
            (Zero | Int | Fraction, 'e' | 'E') => Exponent,
            (Exponent, '+' | '-') => ExponentSign,
            (Exponent | ExponentSign | ExponentDigits, '0'..='9') => ExponentDigits,
            _ => return self.end_number(part) && self.push(c),
        };
        self.expect = Expect::Number(next);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(text: &str) -> Option<JsonPrefix> {
        JsonPrefix::default().after(text)
    }

    #[test]
    fn every_prefix_of_an_object_is_taken_and_the_whole_is_done() {
        let object = r#" {"title": "三体", "year": 2008, "ratio": -0.5e+3, "tags": ["sf", true, null, {}], "q": "a\"b\u00e9"}"#;
        for (at, _) in object.char_indices().skip(1) {
            let prefix = fed(&object[..at]);
            assert!(prefix.is_some(), "{:?}", &object[..at]);
            assert!(!prefix.unwrap().is_done());
        }
        assert!(fed(object).unwrap().is_done());
        assert!(serde_json::from_str::<serde_json::Value>(object).is_ok());
    }

    #[test]
    fn what_cannot_become_an_object_is_refused() {
        for bad in [
            "Sure! {",
            "[1]",
            "\"a\"",
            "{'a': 1}",
            "{\"a\" 1}",
            "{\"a\": 01}",
            "{\"a\": 1.}x",
            "{\"a\": tru }",
            "{\"a\": \"line\nbreak\"}",
            "{\"a\": 1,}",
            "{\"a\": [1 2]}",
            "{\"a\": 1]}",
            "{} {",
            "{\"a\": \"\\x\"}",
        ] {
            assert!(fed(bad).is_none(), "{bad:?}");
        }
        assert!(fed(&format!("{{{}", " ".repeat(40))).is_none());
        assert!(fed("").is_none());
    }

    #[test]
    fn a_number_ends_at_whitespace_or_a_close() {
        assert!(fed("{\"n\": 12 ,\"m\": 0}").unwrap().is_done());
        assert!(fed("{\"n\": [1e5]}").unwrap().is_done());
        assert!(fed("{\"n\": 1e}").is_none());
        // A token ending mid-character decodes to U+FFFD: string content.
        assert!(fed("{\"t\": \"三\u{FFFD}").is_some());
        assert!(fed("{\u{FFFD}").is_none());
    }
}
