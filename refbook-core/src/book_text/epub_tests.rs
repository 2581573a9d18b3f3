//! Tests of [`epub`](super): chapters, titles, and every refusal.

use std::io::{Cursor, Write};

use super::*;

/// An EPUB holding `files` (path, content), stored uncompressed.
pub(crate) fn epub(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("mimetype", options).unwrap();
    writer.write_all(b"application/epub+zip").unwrap();
    for (path, content) in files {
        writer.start_file(*path, options).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

const CONTAINER: &str = r#"<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"#;

fn opf(spine: &[(&str, &str)], extra: &str) -> String {
    let items: String = spine
        .iter()
        .map(|(id, href)| {
            format!(r#"<item id="{id}" href="{href}" media-type="application/xhtml+xml"/>"#)
        })
        .collect();
    let refs: String = spine
        .iter()
        .map(|(id, _)| format!(r#"<itemref idref="{id}"/>"#))
        .collect();
    format!(
        r#"<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">
<manifest>{items}{extra}</manifest><spine toc="ncx">{refs}</spine></package>"#
    )
}

fn chapter(heading: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html [<!ENTITY lol "lollollollollollollollollollol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title><style>p {{ color: red }}</style></head>
<body><h1>{heading}</h1><p>{body}</p><script>alert(1)</script><p>&lol2;&amp;&#x4E00;</p></body></html>"#
    )
}

#[test]
fn chapters_come_in_spine_order_with_the_ncx_titles() {
    let ncx = r#"<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"><navMap>
<navPoint id="a"><navLabel><text>第二章 红岸</text></navLabel><content src="text/ch2.xhtml#top"/></navPoint>
</navMap></ncx>"#;
    let book = epub(&[
        ("META-INF/container.xml", CONTAINER),
        (
            "OEBPS/content.opf",
            &opf(
                &[("c1", "text/ch1.xhtml"), ("c2", "text/ch2.xhtml")],
                r#"<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>"#,
            ),
        ),
        ("OEBPS/toc.ncx", ncx),
        (
            "OEBPS/text/ch1.xhtml",
            &chapter("第一章 科学边界", "汪淼是纳米材料研究者。"),
        ),
        (
            "OEBPS/text/ch2.xhtml",
            &chapter("Red Coast", "叶文洁在红岸基地。"),
        ),
    ]);
    let chapters = read_epub(&book).unwrap();
    assert_eq!(chapters.len(), 2);
    assert_eq!(
        chapters[0].title, "第一章 科学边界",
        "no TOC entry: the first heading"
    );
    assert_eq!(chapters[1].title, "第二章 红岸", "the NCX's title");
    assert!(chapters[0]
        .text
        .starts_with("第一章 科学边界\n汪淼是纳米材料研究者。"));
    assert!(chapters[0].text.ends_with("&一"), "{}", chapters[0].text);
    assert!(
        !chapters[0].text.contains("lol"),
        "a DTD's entities are never expanded"
    );
    assert!(!chapters[0].text.contains("alert") && !chapters[0].text.contains("color"));
}

#[test]
fn an_epub3_nav_names_the_chapters() {
    let nav = r#"<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><body>
<nav epub:type="toc"><ol><li><a href="ch1.xhtml">Chapter One: The Ball</a></li></ol></nav></body></html>"#;
    let book = epub(&[
        ("META-INF/container.xml", CONTAINER),
        (
            "OEBPS/content.opf",
            &opf(
                &[("c1", "ch1.xhtml")],
                r#"<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>"#,
            ),
        ),
        ("OEBPS/nav.xhtml", nav),
        (
            "OEBPS/ch1.xhtml",
            &chapter("I", "It is a truth universally acknowledged."),
        ),
    ]);
    let chapters = read_epub(&book).unwrap();
    assert_eq!(chapters[0].title, "Chapter One: The Ball");
}

#[test]
fn bad_epubs_are_refused() {
    let refused = |bytes: &[u8], says: &str| {
        let err = read_epub(bytes).unwrap_err();
        assert_eq!(err.field(), Some("file"));
        assert!(err.message().en.contains(says), "{}", err.message().en);
    };
    refused(b"not a zip at all", "not a readable EPUB");
    refused(&epub(&[("a.txt", "x")]), "not a readable EPUB");
    // A spine that leaves the archive.
    refused(
        &epub(&[
            ("META-INF/container.xml", CONTAINER),
            (
                "OEBPS/content.opf",
                &opf(&[("c1", "../../../etc/passwd")], ""),
            ),
        ]),
        "outside the archive",
    );
    // DRM: the chapters are encrypted (fonts obfuscated for embedding would be fine).
    let encryption = r#"<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
 xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>
<enc:CipherReference URI="OEBPS/ch1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>"#;
    refused(
        &epub(&[
            ("META-INF/container.xml", CONTAINER),
            ("META-INF/encryption.xml", encryption),
            ("OEBPS/content.opf", &opf(&[("c1", "ch1.xhtml")], "")),
            ("OEBPS/ch1.xhtml", "binary"),
        ]),
        "DRM",
    );
    // Too many entries.
    let many: Vec<(String, String)> = (0..=MAX_ENTRIES)
        .map(|i| (format!("f{i}"), String::new()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    refused(&epub(&many), "too many files");
}

#[test]
fn paths_resolve_inside_the_archive_only() {
    assert_eq!(
        resolve("OEBPS/", "text/a.xhtml#x").as_deref(),
        Some("OEBPS/text/a.xhtml")
    );
    assert_eq!(
        resolve("OEBPS/text/", "../b.xhtml").as_deref(),
        Some("OEBPS/b.xhtml")
    );
    assert_eq!(
        resolve("OEBPS/", "a%20b.xhtml").as_deref(),
        Some("OEBPS/a b.xhtml")
    );
    assert_eq!(resolve("", "../x"), None);
    assert_eq!(resolve("OEBPS/", "/etc/passwd"), None);
    assert_eq!(resolve("OEBPS/", "http://example.com/x"), None);
}
