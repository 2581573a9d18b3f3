//! Text hygiene shared by every service: no NUL or other C0 control characters in text
//! that is stored or looked up (PostgreSQL cannot store NUL, and no reader wants the
//! others). Tab, line feed and carriage return (as part of a line break) are text.

use crate::error::{Error, Result};

/// Whether `c` is a C0 control character that text may not hold.
pub fn is_forbidden_control(c: char) -> bool {
    c < ' ' && !matches!(c, '\t' | '\n' | '\r')
}

/// Whether `text` holds a forbidden control character.
pub fn has_forbidden_control(text: &str) -> bool {
    text.chars().any(is_forbidden_control)
}

/// `Ok` when `text` holds no forbidden control character.
///
/// # Errors
///
/// `INVALID_PARAMS` naming `field`.
pub fn refuse_controls(field: &'static str, text: &str) -> Result<()> {
    if has_forbidden_control(text) {
        return Err(Error::invalid(
            field,
            format!("{field} 不能包含控制字符（如 NUL）"),
            format!("{field} must not contain control characters (such as NUL)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_refused_but_line_breaks_and_tabs_are_text() {
        assert!(!has_forbidden_control("第一行\r\n第二行\t缩进"));
        assert!(has_forbidden_control("a\0b"));
        assert!(has_forbidden_control("\u{1b}[31m"));
        assert!(!has_forbidden_control("\u{7f}\u{85}"), "only C0 controls");
        assert!(refuse_controls("q", "x\u{1}").is_err());
    }
}
