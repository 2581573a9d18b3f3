//! Validation of account fields, exactly as the contract states them.

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// How many characters a username has (after NFKC folding and trimming).
pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;
/// How many characters a password has.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
/// The longest email address, in characters.
pub const EMAIL_MAX_CHARS: usize = 254;
/// The longest nickname, in characters (after trimming).
pub const NICKNAME_MAX_CHARS: usize = 32;
/// The longest API key name, in characters (after trimming).
pub const API_KEY_NAME_MAX_CHARS: usize = 64;
/// The longest avatar URL, in bytes.
pub const AVATAR_URL_MAX_BYTES: usize = 2048;

/// A username: NFKC-normalised, 3–32 characters of letters (any script), digits, `_ . -`.
///
/// # Errors
///
/// `InvalidInput` naming `username` when it does not fit those rules.
pub fn username(raw: &str) -> Result<String> {
    let name: String = raw.trim().nfkc().collect();
    let count = name.chars().count();
    if !USERNAME_CHARS.contains(&count) {
        return Err(Error::invalid(
            "username",
            "用户名长度须为 3–32 个字符",
            "Username must be 3–32 characters long",
        ));
    }
    let allowed = |c: char| c.is_alphabetic() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
    if !name.chars().all(allowed) {
        return Err(Error::invalid(
            "username",
            "用户名只能包含字母、数字及 _ . -",
            "Username may contain only letters, digits and _ . -",
        ));
    }
    Ok(name)
}

/// A password: 8–128 characters, taken as typed.
///
/// # Errors
///
/// `InvalidInput` naming `field` for a length out of bounds or a control character.
pub fn password(field: &'static str, raw: &str) -> Result<()> {
    crate::text::refuse_controls(field, raw)?;
    let count = raw.chars().count();
    if !PASSWORD_CHARS.contains(&count) {
        return Err(Error::invalid(
            field,
            "密码长度须为 8–128 个字符",
            "Password must be 8–128 characters long",
        ));
    }
    Ok(())
}

/// An email that looks like one; `None` when empty.
///
/// # Errors
///
/// `InvalidInput` naming `email` when it does not look like an address or is too long.
pub fn email(raw: &str) -> Result<Option<String>> {
    let email = raw.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Error::invalid(
            "email",
            "邮箱格式不正确",
            "That does not look like an email address",
        )
    };
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'));
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && !local.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '@' | '<' | '>' | ',' | ';' | '"')
        });
    if !domain_ok || !local_ok || email.chars().count() > EMAIL_MAX_CHARS {
        return Err(bad());
    }
    Ok(Some(email.to_owned()))
}

/// `raw` trimmed, if it then has 1–`max` characters and no control characters.
fn short_name(raw: &str, max: usize) -> Option<String> {
    let name = raw.trim();
    let count = name.chars().count();
    ((1..=max).contains(&count) && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

/// A nickname: trimmed, 1–32 characters, no control characters.
///
/// # Errors
///
/// `InvalidInput` naming `nickname` when it does not fit those rules.
pub fn nickname(raw: &str) -> Result<String> {
    short_name(raw, NICKNAME_MAX_CHARS).ok_or_else(|| {
        Error::invalid(
            "nickname",
            "昵称须为 1–32 个字符",
            "Nickname must be 1–32 characters without control characters",
        )
    })
}

/// An API key's name: trimmed, 1–64 characters, no control characters.
///
/// # Errors
///
/// `InvalidInput` naming `name` when it does not fit those rules.
pub fn api_key_name(raw: &str) -> Result<String> {
    short_name(raw, API_KEY_NAME_MAX_CHARS).ok_or_else(|| {
        Error::invalid(
            "name",
            "密钥名称须为 1–64 个字符",
            "name must be 1–64 characters without control characters",
        )
    })
}

/// An avatar URL (`http`/`https`, at most 2048 characters); `None` when empty.
///
/// # Errors
///
/// `InvalidInput` naming `avatar_url` for another scheme or a longer URL.
pub fn avatar_url(raw: &str) -> Result<Option<String>> {
    let url = raw.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok
        || url.len() > AVATAR_URL_MAX_BYTES
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "avatar_url",
            "头像地址须为 http(s) 链接",
            "avatar_url must be an http(s) URL",
        ));
    }
    Ok(Some(url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        assert_eq!(username("alice").unwrap(), "alice");
        assert_eq!(username("  读书人_01 ").unwrap(), "读书人_01");
        assert_eq!(
            username("ａｌｉｃｅ１").unwrap(),
            "alice1",
            "full-width folds by NFKC"
        );
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("a".repeat(32).as_str()).is_ok());
        assert!(username("bad name").is_err());
        assert!(username("mail@x").is_err());
        assert!(username("a.b-c_d").is_ok());
    }

    #[test]
    fn passwords_are_8_to_128_characters() {
        assert!(password("password", "1234567").is_err());
        assert!(password("password", "12345678").is_ok());
        assert!(password("password", "密码密码密码密码").is_ok());
        assert!(password("password", &"x".repeat(129)).is_err());
    }

    #[test]
    fn emails_must_look_like_one() {
        assert_eq!(email(" a@b.cn ").unwrap().as_deref(), Some("a@b.cn"));
        assert_eq!(email("").unwrap(), None);
        for bad in [
            "a", "a@b", "@b.cn", "a@.cn", "a b@c.cn", "a@b..cn", "a@b.cn.",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nicknames_and_avatars() {
        assert_eq!(nickname(" 阿书 ").unwrap(), "阿书");
        assert!(nickname("  ").is_err());
        assert!(nickname("a\u{7}").is_err());
        assert_eq!(avatar_url("").unwrap(), None);
        assert!(avatar_url("javascript:alert(1)").is_err());
        assert!(avatar_url("https://img.example.com/a.png").is_ok());
    }
}
