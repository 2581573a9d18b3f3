//! A model hub on a wiremock server, as Hugging Face serves a GGUF file: `HEAD` of the
//! `resolve` address answers a redirect naming the file's size and SHA-256
//! (`X-Linked-Size`, `X-Linked-Etag`), and `GET` follows it to the bytes.

use std::path::Path;

use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Where the bytes are served (the "CDN" the hub redirects to).
pub const HUB_BYTES_PATH: &str = "/cdn/model.gguf";

/// Serves the GGUF at `file` as `hf:test/tiny/model.gguf` on `hub`; returns that
/// reference. Count `GET {HUB_BYTES_PATH}` requests to see whether it was downloaded.
///
/// # Panics
///
/// When the file cannot be read (a test helper).
#[allow(clippy::expect_used)]
pub async fn mount_model_hub(hub: &MockServer, file: &Path) -> String {
    let bytes = std::fs::read(file).expect("the model file reads");
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let resolve = "/test/tiny/resolve/main/model.gguf";
    let redirect = ResponseTemplate::new(302)
        .insert_header("location", format!("{}{HUB_BYTES_PATH}", hub.uri()))
        .insert_header("x-linked-size", bytes.len().to_string())
        .insert_header("x-linked-etag", format!("\"{sha}\""));
    Mock::given(method("HEAD"))
        .and(path(resolve))
        .respond_with(redirect.clone())
        .mount(hub)
        .await;
    Mock::given(method("GET"))
        .and(path(resolve))
        .respond_with(redirect)
        .mount(hub)
        .await;
    Mock::given(method("GET"))
        .and(path(HUB_BYTES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes))
        .mount(hub)
        .await;
    "hf:test/tiny/model.gguf".to_owned()
}

/// A hub address where nothing listens (an offline machine's view of the hub).
///
/// # Panics
///
/// When no local port can be taken (a test helper).
#[allow(clippy::expect_used)]
pub fn unreachable_hub() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("its address");
    drop(listener);
    format!("http://{address}")
}
