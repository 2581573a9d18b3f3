//! Each source against its stand-in.

use std::time::Duration;

use refbook_core::books::{BookSource, Douban, GoogleBooks, Isbn, OpenLibrary, SourceError};
use refbook_core::config::Secret;
use serde_json::json;
use wiremock::matchers::{header_regex, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(refbook_core::refbook::USER_AGENT)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

fn isbn(text: &str) -> Isbn {
    Isbn::parse(text).unwrap()
}

#[tokio::test]
async fn douban_hit_with_string_numbers_and_junk_isbn10() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/book/isbn/{SANTI}")))
        .and(query_param("apikey", "k-123"))
        .and(header_regex("user-agent", "^Refbook/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(douban_santi(
            "https://img9.doubanio.com/view/subject/l/public/s2768378.jpg",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let douban = Douban::new(client(), &server.uri(), Some(Secret::new("k-123")));
    let book = douban.lookup(&isbn(SANTI)).await.unwrap().unwrap();
    assert_eq!(book.title, "三体");
    assert_eq!(book.subtitle, None, "empty strings become null");
    assert_eq!(book.authors, ["刘慈欣"]);
    assert_eq!(book.pages, Some(302));
    assert_eq!(
        book.isbn10.as_deref(),
        Some("7536692935"),
        "computed, not the junk"
    );
    assert_eq!(book.tags, ["科幻", "刘慈欣"]);
    assert_eq!(
        book.introduction.as_deref(),
        Some("文化大革命如火如荼进行的同时……")
    );
    assert_eq!(
        book.cover_url.as_deref(),
        Some("https://img9.doubanio.com/view/subject/l/public/s2768378.jpg")
    );
    assert_eq!(book.source, "douban");
}

#[tokio::test]
async fn douban_variants_translators_numbers_and_default_cover() {
    let server = MockServer::start().await;
    let mut body = douban_santi("https://img3.doubanio.com/f/shire/5522dd1f5b742d1e1394a17f44d590646b63871d/pics/book-default-lpic.gif");
    body["translators"] = json!(["屈畅"]);
    body["pages"] = json!(873);
    body["rating"]["average"] = json!(9.4);
    Mock::given(path(format!("/v2/book/isbn/{SANTI}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let book = Douban::new(client(), &server.uri(), None)
        .lookup(&isbn(SANTI))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(book.translators, ["屈畅"]);
    assert_eq!(book.pages, Some(873));
    assert_eq!(book.cover_url, None, "book-default means no cover");
}

#[tokio::test]
async fn douban_errors() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/v2/book/isbn/{SANTI}")))
        .respond_with(ResponseTemplate::new(404).set_body_json(douban_not_found()))
        .mount(&server)
        .await;
    Mock::given(path(format!("/v2/book/isbn/{FOX}")))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"msg": "invalid_apikey", "code": 104})),
        )
        .mount(&server)
        .await;
    Mock::given(path(format!("/v2/book/isbn/{CLRS}")))
        .respond_with(ResponseTemplate::new(403).set_body_string("<html>forbidden</html>"))
        .mount(&server)
        .await;
    let douban = Douban::new(client(), &server.uri(), None);
    assert_eq!(douban.lookup(&isbn(SANTI)).await, Ok(None));
    assert_eq!(
        douban.lookup(&isbn(FOX)).await,
        Err(SourceError::Status(400))
    );
    assert_eq!(
        douban.lookup(&isbn(CLRS)).await,
        Err(SourceError::RateLimited(403))
    );
}

async fn openlibrary_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(format!("/isbn/{FOX}.json")))
        .and(header_regex("user-agent", "^Refbook/.*\\+"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "/books/OL7353617M.json"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/books/OL7353617M.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openlibrary_edition()))
        .mount(&server)
        .await;
    Mock::given(path("/authors/OL34184A.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openlibrary_author()))
        .mount(&server)
        .await;
    Mock::given(path("/works/OL45804W.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openlibrary_work()))
        .mount(&server)
        .await;
    Mock::given(path(format!("/isbn/{SANTI}.json")))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw("<!DOCTYPE html><html>Page not found</html>", "text/html"),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn openlibrary_follows_the_redirect_and_resolves_authors() {
    let server = openlibrary_server().await;
    let ol = OpenLibrary::new(client(), &server.uri(), "https://covers.openlibrary.org");
    let book = ol.lookup(&isbn("0140328726")).await.unwrap().unwrap();
    assert_eq!(book.isbn.as_str(), FOX);
    assert_eq!(book.title, "Fantastic Mr. Fox");
    assert_eq!(book.authors, ["Roald Dahl"]);
    assert_eq!(book.author_intro.as_deref(), Some("British novelist."));
    assert_eq!(book.publisher.as_deref(), Some("Puffin"));
    assert_eq!(book.published.as_deref(), Some("October 1, 1988"));
    assert_eq!(book.pages, Some(96));
    assert_eq!(
        book.introduction.as_deref(),
        Some("The fox outwits three farmers."),
        "from the work"
    );
    assert_eq!(book.tags, ["Foxes", "Juvenile fiction"]);
    assert_eq!(
        book.cover_url.as_deref(),
        Some("https://covers.openlibrary.org/b/id/8739161-L.jpg?default=false")
    );
    // An HTML 404 is a clean miss.
    assert_eq!(ol.lookup(&isbn(SANTI)).await, Ok(None));
}

#[tokio::test]
async fn openlibrary_plain_string_description_and_missing_fields() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/isbn/{CLRS}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"title": "Introduction to Algorithms", "description": "Plain text."}),
        ))
        .mount(&server)
        .await;
    let book = OpenLibrary::new(client(), &server.uri(), "https://covers.openlibrary.org")
        .lookup(&isbn(CLRS))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(book.introduction.as_deref(), Some("Plain text."));
    assert!(book.authors.is_empty() && book.cover_url.is_none() && book.pages.is_none());
}

#[tokio::test]
async fn openlibrary_throttling_and_slowness_are_errors() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/isbn/{FOX}.json")))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    Mock::given(path(format!("/isbn/{CLRS}.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"title": "late"}))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    Mock::given(path(format!("/isbn/{SANTI}.json")))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let ol = OpenLibrary::new(client(), &server.uri(), "https://covers.openlibrary.org");
    assert_eq!(
        ol.lookup(&isbn(FOX)).await,
        Err(SourceError::RateLimited(429))
    );
    assert_eq!(ol.lookup(&isbn(CLRS)).await, Err(SourceError::Timeout));
    assert_eq!(ol.lookup(&isbn(SANTI)).await, Err(SourceError::Status(503)));
}

#[tokio::test]
async fn google_books_accepts_only_the_asked_isbn() {
    let server = MockServer::start().await;
    Mock::given(path("/books/v1/volumes"))
        .and(query_param("q", format!("isbn:{CLRS}")))
        .and(query_param("key", "g-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(google_hit(CLRS, "Introduction to Algorithms")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/books/v1/volumes"))
        .and(query_param("q", format!("isbn:{FOX}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(google_hit("9780000000002", "Some Other Book")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/books/v1/volumes"))
        .and(query_param("q", format!("isbn:{SANTI}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(google_miss()))
        .mount(&server)
        .await;
    let google = GoogleBooks::new(client(), &server.uri(), Some(Secret::new("g-key")));
    let book = google.lookup(&isbn(CLRS)).await.unwrap().unwrap();
    assert_eq!(book.title, "Introduction to Algorithms");
    assert_eq!(book.authors, ["Thomas H. Cormen", "Charles E. Leiserson"]);
    assert_eq!(book.pages, Some(1292));
    assert_eq!(
        book.cover_url.as_deref(),
        Some("https://books.google.com/books/content?id=x&zoom=1")
    );
    assert_eq!(
        google.lookup(&isbn(FOX)).await,
        Ok(None),
        "another ISBN's volume is refused"
    );
    assert_eq!(
        google.lookup(&isbn(SANTI)).await,
        Ok(None),
        "totalItems 0 without items"
    );
}

#[tokio::test]
async fn google_books_quota_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/books/v1/volumes"))
        .respond_with(ResponseTemplate::new(429).set_body_json(google_quota()))
        .mount(&server)
        .await;
    let google = GoogleBooks::new(client(), &server.uri(), None);
    assert_eq!(
        google.lookup(&isbn(CLRS)).await,
        Err(SourceError::RateLimited(429))
    );
}
