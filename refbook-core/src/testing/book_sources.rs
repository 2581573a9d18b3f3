//! Book sources that do not have a book, as each answers then (UPSTREAMS.md): one
//! wiremock server stands in for Douban, Open Library and Google Books at once. Mounted at
//! a low priority, so a test's own hits win.

use serde_json::json;
use wiremock::matchers::{path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Douban: `404` with its JSON error (`book_not_found`, code 6000) for any ISBN.
pub async fn douban_miss(server: &MockServer) {
    Mock::given(path_regex("^/v2/book/isbn/"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"msg": "book_not_found", "code": 6000, "request": "x"})),
        )
        .with_priority(10)
        .mount(server)
        .await;
}

/// Open Library: `404` with an HTML page for any ISBN.
pub async fn openlibrary_miss(server: &MockServer) {
    Mock::given(path_regex("^/isbn/"))
        .respond_with(
            ResponseTemplate::new(404).set_body_raw("<html>not found</html>", "text/html"),
        )
        .with_priority(10)
        .mount(server)
        .await;
}

/// Google Books: `200` with no items.
pub async fn google_miss(server: &MockServer) {
    Mock::given(path("/books/v1/volumes"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"kind": "books#volumes", "totalItems": 0})),
        )
        .with_priority(10)
        .mount(server)
        .await;
}

/// No source has any book.
pub async fn no_source_has_it(server: &MockServer) {
    douban_miss(server).await;
    openlibrary_miss(server).await;
    google_miss(server).await;
}
