//! Upstream answers as the real services give them.

use serde_json::{json, Value};

pub const SANTI: &str = "9787536692930";
pub const FOX: &str = "9780140328721";
pub const CLRS: &str = "9780262033848";

/// Douban v2 hit: string numbers, junk isbn10, `rating.average` as a string.
pub fn douban_santi(image: &str) -> Value {
    json!({
        "id": "2567698", "isbn10": "junk-isbn", "isbn13": SANTI,
        "title": "三体", "subtitle": "", "origin_title": "",
        "author": ["刘慈欣"], "translator": [],
        "publisher": "重庆出版社", "pubdate": "2008-1", "pages": "302", "price": "23.00元",
        "rating": {"max": 10, "numRaters": 6786, "average": "9.4", "min": 0},
        "tags": [{"count": 100, "name": "科幻", "title": "科幻"}, {"count": 50, "name": "刘慈欣", "title": "刘慈欣"}],
        "image": image, "images": {"small": image, "medium": image, "large": image},
        "author_intro": "刘慈欣，中国科幻作家。", "summary": "文化大革命如火如荼进行的同时……", "catalog": ""
    })
}

pub fn douban_not_found() -> Value {
    json!({"msg": "book_not_found", "code": 6000, "request": "GET /v2/book/isbn/9787536692930"})
}

pub fn openlibrary_edition() -> Value {
    json!({
        "title": "Fantastic Mr. Fox",
        "authors": [{"key": "/authors/OL34184A"}],
        "works": [{"key": "/works/OL45804W"}],
        "publishers": ["Puffin"],
        "publish_date": "October 1, 1988",
        "number_of_pages": 96,
        "isbn_10": ["0140328726"], "isbn_13": [FOX],
        "covers": [8739161],
        "key": "/books/OL7353617M"
    })
}

pub fn openlibrary_author() -> Value {
    json!({"name": "Roald Dahl", "bio": {"type": "/type/text", "value": "British novelist."}})
}

pub fn openlibrary_work() -> Value {
    json!({"description": {"type": "/type/text", "value": "The fox outwits three farmers."},
           "subjects": ["Foxes", "Juvenile fiction"]})
}

pub fn google_volume(identifier: &str, title: &str) -> Value {
    json!({
        "id": "x", "volumeInfo": {
            "title": title, "authors": ["Thomas H. Cormen", "Charles E. Leiserson"],
            "publisher": "MIT Press", "publishedDate": "2009-07-31",
            "description": "A comprehensive update.",
            "industryIdentifiers": [{"type": "ISBN_13", "identifier": identifier}, {"type": "ISBN_10", "identifier": "0262033844"}],
            "pageCount": 1292, "language": "en", "categories": ["Computers"],
            "imageLinks": {"smallThumbnail": "http://books.google.com/books/content?id=x&zoom=5", "thumbnail": "http://books.google.com/books/content?id=x&zoom=1"}
        }
    })
}

pub fn google_hit(identifier: &str, title: &str) -> Value {
    json!({"kind": "books#volumes", "totalItems": 1, "items": [google_volume(identifier, title)]})
}

pub fn google_miss() -> Value {
    json!({"kind": "books#volumes", "totalItems": 0})
}

pub fn google_quota() -> Value {
    json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}})
}
