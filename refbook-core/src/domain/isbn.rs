//! [`Isbn`]: the only way an ISBN enters the system.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::error::Error;

/// A valid ISBN, held as its canonical ISBN-13 (digits only, 978 or 979 prefix).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Isbn(String);

/// Why a text is not an ISBN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsbnError {
    /// Not 10 or 13 digits (an `X` only as the ISBN-10 check digit).
    #[error("an ISBN has 10 or 13 digits")]
    Shape,
    /// The check digit does not match.
    #[error("the ISBN's check digit is wrong")]
    Checksum,
    /// A 13-digit number that does not start with 978 or 979.
    #[error("an ISBN-13 starts with 978 or 979")]
    Prefix,
}

impl From<IsbnError> for Error {
    fn from(err: IsbnError) -> Self {
        let zh = match err {
            IsbnError::Shape => "ISBN 应为 10 位或 13 位数字",
            IsbnError::Checksum => "ISBN 校验位错误",
            IsbnError::Prefix => "ISBN-13 须以 978 或 979 开头",
        };
        Error::invalid("isbn", zh, err.to_string())
    }
}

impl Isbn {
    /// Parses every form seen in the wild: hyphens and spaces, `x`/`X`, full-width digits
    /// (NFKC), `ISBN`, `ISBN-10:`/`ISBN-13:` prefixes, surrounding whitespace.
    ///
    /// # Errors
    ///
    /// [`IsbnError`] for text that is no ISBN-10 or ISBN-13, or whose check digit is wrong.
    pub fn parse(text: &str) -> Result<Self, IsbnError> {
        let normal: String = text.nfkc().collect::<String>().to_uppercase();
        let body = strip_prefix(normal.trim());
        let compact: Vec<u8> = body
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\t' | b'\n' | b'\r'))
            .collect();
        match compact.len() {
            10 => {
                let (digits, check) = compact.split_at(9);
                if !digits.iter().all(u8::is_ascii_digit)
                    || !(check[0].is_ascii_digit() || check[0] == b'X')
                {
                    return Err(IsbnError::Shape);
                }
                if isbn10_check(digits) != check[0] {
                    return Err(IsbnError::Checksum);
                }
                let mut isbn13 = b"978".to_vec();
                isbn13.extend_from_slice(digits);
                isbn13.push(isbn13_check(&isbn13));
                Ok(Self(String::from_utf8_lossy(&isbn13).into_owned()))
            }
            13 => {
                if !compact.iter().all(u8::is_ascii_digit) {
                    return Err(IsbnError::Shape);
                }
                if !(compact.starts_with(b"978") || compact.starts_with(b"979")) {
                    return Err(IsbnError::Prefix);
                }
                if isbn13_check(&compact[..12]) != compact[12] {
                    return Err(IsbnError::Checksum);
                }
                Ok(Self(String::from_utf8_lossy(&compact).into_owned()))
            }
            _ => Err(IsbnError::Shape),
        }
    }

    /// The canonical ISBN-13, digits only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISBN-10, for 978 ISBNs (979 ones have none).
    pub fn isbn10(&self) -> Option<String> {
        let digits = self.0.strip_prefix("978")?.as_bytes().get(..9)?;
        let mut out = digits.to_vec();
        out.push(isbn10_check(digits));
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

impl fmt::Display for Isbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Isbn {
    /// The canonical ISBN-13.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Stored as its ISBN-13 text; a stored text that is no ISBN fails to decode (an error,
/// never a record with a wrong key).
impl<DB: sqlx::Database> sqlx::Type<DB> for Isbn
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for Isbn
where
    String: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        self.0.encode_by_ref(buf)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for Isbn
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Self::parse(&String::decode(value)?)?)
    }
}

impl std::str::FromStr for Isbn {
    type Err = IsbnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Drops an `ISBN`, `ISBN:`, `ISBN-13:`, `ISBN10 ` … prefix (the 10/13 is not part of the
/// number; it is dropped only when a colon or space follows it).
fn strip_prefix(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("ISBN") else {
        return text;
    };
    let after_dash = rest.strip_prefix('-').unwrap_or(rest);
    for kind in ["13", "10"] {
        if let Some(after) = after_dash.strip_prefix(kind) {
            if after.starts_with([':', ' ', '：']) {
                return after.trim_start_matches([':', ' ', '：']);
            }
        }
    }
    rest.trim_start_matches([':', ' ', '：'])
}

/// The ISBN-10 check character of nine digits: sum (10−i)·dᵢ + check ≡ 0 (mod 11).
fn isbn10_check(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match (11 - sum % 11) % 11 {
        10 => b'X',
        n => b'0' + n as u8,
    }
}

/// The ISBN-13 check digit of twelve digits: weights 1,3,1,3…, sum ≡ 0 (mod 10).
fn isbn13_check(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_isbns_from_upstreams_md() {
        let cases = [
            ("9787536692930", "9787536692930", Some("7536692935")),
            ("7536692935", "9787536692930", Some("7536692935")),
            ("9787020002207", "9787020002207", Some("702000220X")),
            ("702000220x", "9787020002207", Some("702000220X")),
            ("9787544253994", "9787544253994", Some("7544253996")),
            ("9787505715660", "9787505715660", Some("7505715666")),
            ("0140328726", "9780140328721", Some("0140328726")),
            ("9780262033848", "9780262033848", Some("0262033844")),
            ("9791090636071", "9791090636071", None),
        ];
        for (input, isbn13, isbn10) in cases {
            let isbn = Isbn::parse(input).unwrap();
            assert_eq!(isbn.as_str(), isbn13, "{input}");
            assert_eq!(isbn.isbn10().as_deref(), isbn10, "{input}");
        }
    }

    #[test]
    fn real_world_forms() {
        for input in [
            "978-7-5366-9293-0",
            "978 7 5366 9293 0",
            "ISBN 978-7-5366-9293-0",
            "ISBN-13: 978-7-5366-9293-0",
            "ISBN13 9787536692930",
            "isbn:9787536692930",
            "ISBN-10: 7-5366-9293-5",
            "  9787536692930\n",
            "９７８７５３６６９２９３０",
            "ＩＳＢＮ　９７８－７－５３６６－９２９３－０",
        ] {
            assert_eq!(
                Isbn::parse(input).unwrap().as_str(),
                "9787536692930",
                "{input:?}"
            );
        }
    }

    #[test]
    fn bad_isbns_are_refused() {
        assert_eq!(Isbn::parse("9780451526538"), Err(IsbnError::Checksum));
        assert_eq!(Isbn::parse("9787536692931"), Err(IsbnError::Checksum));
        assert_eq!(Isbn::parse("7020002207"), Err(IsbnError::Checksum));
        assert_eq!(Isbn::parse("9771234567003"), Err(IsbnError::Prefix));
        assert_eq!(Isbn::parse("12345"), Err(IsbnError::Shape));
        assert_eq!(Isbn::parse(""), Err(IsbnError::Shape));
        assert_eq!(Isbn::parse("X020002207"), Err(IsbnError::Shape));
        assert_eq!(Isbn::parse("978753669293X"), Err(IsbnError::Shape));
        assert_eq!(Isbn::parse("abc"), Err(IsbnError::Shape));
    }

    fn hyphenate(digits: &str, seps: &[usize]) -> String {
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && seps.contains(&i) {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    proptest! {
        #[test]
        fn isbn13_round_trips_in_any_dress(
            prefix in prop_oneof![Just("978"), Just("979")],
            body in "[0-9]{9}",
            seps in proptest::collection::vec(1usize..13, 0..4),
            lower in any::<bool>(),
        ) {
            let twelve = format!("{prefix}{body}");
            let check = isbn13_check(twelve.as_bytes()) as char;
            let canonical = format!("{twelve}{check}");
            let dressed = format!("{}ISBN-13: {}", if lower { " " } else { "" }, hyphenate(&canonical, &seps));
            let isbn = Isbn::parse(&dressed).unwrap();
            prop_assert_eq!(isbn.as_str(), canonical.as_str());
            // ISBN-10 and back, for 978.
            if let Some(ten) = isbn.isbn10() {
                prop_assert_eq!(Isbn::parse(&ten.to_lowercase()).unwrap(), isbn.clone());
            } else {
                prop_assert_eq!(prefix, "979");
            }
            // The canonical form parses to itself.
            prop_assert_eq!(Isbn::parse(isbn.as_str()).unwrap(), isbn);
        }

        #[test]
        fn a_changed_digit_breaks_the_checksum(
            body in "[0-9]{9}",
            position in 0usize..13,
            delta in 1u8..10,
        ) {
            let twelve = format!("978{body}");
            let check = isbn13_check(twelve.as_bytes()) as char;
            let mut bytes = format!("{twelve}{check}").into_bytes();
            prop_assume!(position >= 3); // keep the prefix valid
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(Isbn::parse(&changed).is_err());
        }

        #[test]
        fn a_changed_isbn10_digit_breaks_the_checksum(
            body in "[0-9]{9}",
            position in 0usize..9,
            delta in 1u8..10,
        ) {
            let check = isbn10_check(body.as_bytes()) as char;
            let mut bytes = format!("{body}{check}").into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(Isbn::parse(&changed), Err(IsbnError::Checksum));
        }
    }
}
