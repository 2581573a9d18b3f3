//! Bytes to text: UTF-8 (a byte-order mark dropped), else GB18030 (which covers GBK and
//! GB2312), else refused; then one normal form, so that offsets mean the same thing
//! however the file was written.

use encoding_rs::GB18030;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// The text of `bytes`: UTF-8 when it is valid UTF-8, else GB18030 when that decodes
/// without a replacement.
///
/// # Errors
///
/// `INVALID_PARAMS` (field `file`) when it is neither.
pub fn decode(bytes: &[u8]) -> Result<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let (text, had_errors) = GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(Error::invalid(
            "file",
            "文本既不是 UTF-8 也不是 GB18030/GBK 编码",
            "The text is neither UTF-8 nor GB18030/GBK",
        ));
    }
    Ok(text.into_owned())
}

/// One normal form: line breaks as `\n`, Unicode NFC, control characters other than
/// tab and line feed dropped.
pub fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .nfc()
        .filter(|c| !crate::text::is_forbidden_control(*c) && *c != '\u{7f}')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_gb18030_and_garbage() {
        assert_eq!(decode("\u{feff}第一回".as_bytes()).unwrap(), "第一回");
        let (gbk, _, _) = GB18030.encode("黛玉葬花");
        assert_eq!(decode(&gbk).unwrap(), "黛玉葬花");
        assert!(decode(&[0x81, 0x20, 0xff, 0xfe]).is_err());
    }

    #[test]
    fn one_normal_form() {
        assert_eq!(normalise("a\r\nb\rc\0d\u{7f}e\tf"), "a\nb\ncde\tf");
        assert_eq!(normalise("e\u{301}"), "\u{e9}");
    }
}
