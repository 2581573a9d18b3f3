//! Request bodies in: read whole within a size limit, parsed as JSON or a form, with
//! errors that name the field but never echo what was sent.

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::api_error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes with `413`.
pub async fn read_bytes(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(_) => Err(ApiError::invalid(
            None,
            "请求体读取失败",
            "The request body could not be read",
        )),
    }
}

/// Whether a JSON text holds a string with an escaped C0 control other than tab, line
/// feed and carriage return (`\u0000`…). Raw control bytes inside strings are already
/// invalid JSON; escapes are where they hide.
pub fn json_has_forbidden_control(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'u') => {
                let code = bytes
                    .get(i + 2..i + 6)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok());
                if code.is_some_and(|c| {
                    char::from_u32(c).is_some_and(refbook_core::text::is_forbidden_control)
                }) {
                    return true;
                }
                i += 6;
            }
            _ => i += 2,
        }
    }
    false
}

/// The field whose text holds a forbidden control character (the top-level key it is
/// under), for the error's `details.field`.
pub fn field_with_control(bytes: &[u8]) -> Option<String> {
    fn holds(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => refbook_core::text::has_forbidden_control(text),
            serde_json::Value::Array(items) => items.iter().any(holds),
            serde_json::Value::Object(map) => map
                .iter()
                .any(|(k, v)| refbook_core::text::has_forbidden_control(k) || holds(v)),
            _ => false,
        }
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value
        .as_object()?
        .iter()
        .find(|(_, v)| holds(v))
        .map(|(k, _)| k.clone())
}

/// Parses a JSON body (an empty body counts as `{}`). Errors name the field and what was
/// expected, and never echo the value sent (it may be a password).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            malformed(&inner)
        } else {
            describe_data_error(&path, &inner.to_string())
        }
    })?;
    de.end().map_err(|err| malformed(&err))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::invalid(
        None,
        format!(
            "JSON 格式错误（第 {} 行第 {} 列）",
            err.line(),
            err.column()
        ),
        format!(
            "Malformed JSON at line {} column {}",
            err.line(),
            err.column()
        ),
    )
}

/// A field-level message from serde's, keeping only what is safe to show.
fn describe_data_error(path: &str, serde_message: &str) -> ApiError {
    let message = serde_message
        .split(" at line ")
        .next()
        .unwrap_or(serde_message);
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        let field = if path == "." || path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        return ApiError::invalid(
            Some(&field),
            format!("缺少字段 `{field}`"),
            format!("Missing field `{field}`"),
        );
    }
    let expected = message
        .split_once(", expected ")
        .map_or("a different value", |(_, e)| e);
    let field = if path == "." || path.is_empty() {
        "body"
    } else {
        path
    };
    ApiError::invalid(
        Some(field),
        format!("字段 `{field}` 的值无效（应为 {expected}）"),
        format!("Invalid value for `{field}`: expected {expected}"),
    )
}

/// Parses an `application/x-www-form-urlencoded` body.
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(bytes).map_err(|err| {
        let text = err.to_string();
        match text.strip_prefix("missing field `") {
            Some(rest) => {
                let field = rest.trim_end_matches('`');
                ApiError::invalid(
                    Some(field),
                    format!("缺少字段 `{field}`"),
                    format!("Missing field `{field}`"),
                )
            }
            None => ApiError::invalid(None, "表单格式错误", "Malformed form body"),
        }
    })
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[derive(serde::Deserialize, Debug)]
    struct Login {
        #[allow(dead_code)]
        username: String,
        #[allow(dead_code)]
        password: String,
    }

    #[test]
    fn json_errors_never_echo_values() {
        let err = parse_json::<Login>(br#"{"username": "a", "password": 12345678}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = parse_json::<Login>(br#"{"username": "a", "password": 98765432}"#).unwrap_err();
        let body = format!("{err:?}");
        assert!(!body.contains("98765432"), "{body}");
        assert!(body.contains("password"), "{body}");
    }

    #[test]
    fn json_errors_name_missing_fields_and_syntax() {
        let err = parse_json::<Login>(br#"{"username": "a"}"#).unwrap_err();
        assert!(format!("{err:?}").contains("Missing field `password`"));
        let err = parse_json::<Login>(br#"{"username": "a","#).unwrap_err();
        assert!(format!("{err:?}").contains("Malformed JSON"));
        let err = parse_json::<Login>(br#"{"username":"a","password":"b"} trailing"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn escaped_controls_are_found_and_escaped_backslashes_are_not() {
        assert!(json_has_forbidden_control(br#"{"q": "a\u0000b"}"#));
        assert!(json_has_forbidden_control(br#"{"q": "\u001B[31m"}"#));
        assert!(!json_has_forbidden_control(
            br#"{"q": "line\nbreak\ttab\r\n"}"#
        ));
        assert!(!json_has_forbidden_control(
            br#"{"q": "\\u0000 is how NUL is written"}"#
        ));
        assert!(!json_has_forbidden_control(br#"{"q": "\u4e2d\u6587"}"#));
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        #[derive(serde::Deserialize)]
        struct Opt {
            #[allow(dead_code)]
            all: Option<bool>,
        }
        assert!(parse_json::<Opt>(b"").is_ok());
        assert!(parse_json::<Opt>(b"  \n").is_ok());
    }
}
