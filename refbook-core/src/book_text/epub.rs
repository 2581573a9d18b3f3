//! EPUB: the chapters of the spine in reading order, their text, and their titles from the
//! table of contents (EPUB 3's `nav`, else EPUB 2's NCX, else a chapter's first heading).
//!
//! Read defensively: at most [`MAX_ENTRIES`] archive entries and [`MAX_UNPACKED`] bytes
//! unpacked in all (however small the entries say they are), no path may leave the
//! archive's root, DTDs and entities other than XML's five and character references are
//! never expanded, and a book whose chapters are encrypted (DRM) is refused.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::{Error, Result};

/// The most entries an EPUB may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// The most bytes all the entries read may unpack to.
pub const MAX_UNPACKED: u64 = 256 * 1024 * 1024;

/// One chapter: its title (empty when none is known) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chapter {
    /// From the table of contents, else the chapter's first heading.
    pub title: String,
    /// The chapter's text, paragraphs on lines of their own.
    pub text: String,
}

fn bad(zh: &str, en: &str) -> Error {
    Error::invalid("file", zh.to_owned(), en.to_owned())
}

fn not_epub() -> Error {
    bad("这不是可读的 EPUB 文件", "This is not a readable EPUB file")
}

/// The archive, with what was unpacked so far counted against [`MAX_UNPACKED`].
struct Archive {
    zip: zip::ZipArchive<Cursor<Vec<u8>>>,
    unpacked: u64,
}

impl Archive {
    /// The entry `name`, read whole (within what is left of the budget).
    fn read(&mut self, name: &str) -> Result<Vec<u8>> {
        let left = MAX_UNPACKED.saturating_sub(self.unpacked);
        let mut entry = self.zip.by_name(name).map_err(|_| not_epub())?;
        if entry.encrypted() {
            return Err(drm());
        }
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(left + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| not_epub())?;
        self.unpacked += bytes.len() as u64;
        if self.unpacked > MAX_UNPACKED {
            return Err(bad(
                "EPUB 解压后过大",
                "The EPUB unpacks to more than its limit (256 MiB)",
            ));
        }
        Ok(bytes)
    }

    fn has(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }
}

fn drm() -> Error {
    bad(
        "这本 EPUB 有 DRM 加密，无法读取",
        "This EPUB is DRM-protected (its chapters are encrypted) and cannot be read",
    )
}

/// `href` (as written in a file at `base`, a folder path ending in `/` or empty) as an
/// archive path; `None` when it leaves the archive's root or points elsewhere.
fn resolve(base: &str, href: &str) -> Option<String> {
    let href = href.split('#').next().unwrap_or("");
    let href = percent_encoding::percent_decode_str(href)
        .decode_utf8()
        .ok()?;
    if href.is_empty() || href.contains("://") || href.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in href.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// The folder of an archive path, ending in `/` (empty at the root).
fn folder(path: &str) -> String {
    path.rfind('/')
        .map_or(String::new(), |at| path[..=at].to_owned())
}

fn attribute(tag: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    tag.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// XML's five entities and character references; anything else (a DTD's entity) is
/// dropped, never expanded.
fn entity(reference: &quick_xml::events::BytesRef<'_>) -> Option<String> {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return Some(c.to_string());
    }
    Some(
        match &**reference {
            b"amp" => "&",
            b"lt" => "<",
            b"gt" => ">",
            b"quot" => "\"",
            b"apos" => "'",
            b"nbsp" => " ",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Calls `on` with each event of `xml` (stops at the end or at broken XML).
fn each_event(xml: &[u8], mut on: impl FnMut(&Event<'_>)) {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Eof) | Err(_) => break,
            Ok(event) => on(&event),
        }
        buf.clear();
    }
}

/// The OPF package's path, from `META-INF/container.xml`.
fn package_path(archive: &mut Archive) -> Result<String> {
    let container = archive.read("META-INF/container.xml")?;
    let mut path = None;
    each_event(&container, |event| {
        if let Event::Start(tag) | Event::Empty(tag) = event {
            if tag.local_name().as_ref() == b"rootfile" && path.is_none() {
                path = attribute(tag, b"full-path");
            }
        }
    });
    path.ok_or_else(not_epub)
}

/// The spine's documents in reading order, and the table of contents' document (nav or
/// NCX) if any.
fn spine(opf: &[u8], base: &str) -> (Vec<String>, Option<(String, bool)>) {
    let mut manifest: HashMap<String, (String, String, String)> = HashMap::new();
    let mut order = Vec::new();
    let mut ncx_id = None;
    each_event(opf, |event| {
        let (Event::Start(tag) | Event::Empty(tag)) = event else {
            return;
        };
        match tag.local_name().as_ref() {
            b"item" => {
                if let (Some(id), Some(href)) = (attribute(tag, b"id"), attribute(tag, b"href")) {
                    let media = attribute(tag, b"media-type").unwrap_or_default();
                    let properties = attribute(tag, b"properties").unwrap_or_default();
                    manifest.insert(id, (href, media, properties));
                }
            }
            b"spine" => ncx_id = attribute(tag, b"toc"),
            b"itemref" => {
                if let Some(id) = attribute(tag, b"idref") {
                    order.push(id);
                }
            }
            _ => {}
        }
    });
    let documents = order
        .iter()
        .filter_map(|id| manifest.get(id))
        .filter_map(|(href, _, _)| resolve(base, href))
        .collect();
    let nav = manifest
        .values()
        .find(|(_, _, properties)| properties.split_whitespace().any(|p| p == "nav"))
        .and_then(|(href, _, _)| resolve(base, href))
        .map(|path| (path, true));
    let ncx = ncx_id
        .and_then(|id| manifest.get(&id))
        .or_else(|| {
            manifest
                .values()
                .find(|(_, media, _)| media == "application/x-dtbncx+xml")
        })
        .and_then(|(href, _, _)| resolve(base, href))
        .map(|path| (path, false));
    (documents, nav.or(ncx))
}

/// Titles by document path from a nav document (EPUB 3) or an NCX (EPUB 2).
fn titles(archive: &mut Archive, toc: Option<(String, bool)>) -> HashMap<String, String> {
    let mut titles = HashMap::new();
    let Some((path, is_nav)) = toc else {
        return titles;
    };
    let Ok(xml) = archive.read(&path) else {
        return titles;
    };
    let base = folder(&path);
    let (mut target, mut text, mut inside) = (None::<String>, String::new(), false);
    each_event(&xml, |event| match event {
        Event::Start(tag) | Event::Empty(tag) => match (is_nav, tag.local_name().as_ref()) {
            (true, b"a") => {
                target = attribute(tag, b"href").and_then(|h| resolve(&base, &h));
                text.clear();
                inside = true;
            }
            (false, b"text") => {
                text.clear();
                inside = true;
            }
            (false, b"content") => {
                if let Some(doc) = attribute(tag, b"src").and_then(|h| resolve(&base, &h)) {
                    let title = text.trim().to_owned();
                    if !title.is_empty() {
                        titles.entry(doc).or_insert(title);
                    }
                }
            }
            _ => {}
        },
        Event::Text(t) if inside => text.push_str(&t.decode().unwrap_or_default()),
        Event::GeneralRef(r) if inside => text.push_str(&entity(r).unwrap_or_default()),
        Event::End(tag) => match (is_nav, tag.local_name().as_ref()) {
            (true, b"a") => {
                inside = false;
                let title = text.split_whitespace().collect::<Vec<_>>().join(" ");
                if let Some(doc) = target.take() {
                    if !title.is_empty() {
                        titles.entry(doc).or_insert(title);
                    }
                }
            }
            (false, b"text") => inside = false,
            _ => {}
        },
        _ => {}
    });
    titles
}

/// A chapter's text (paragraphs and headings on lines of their own, scripts and styles
/// left out) and its first heading.
fn chapter_text(xhtml: &[u8]) -> (String, String) {
    let (mut text, mut heading) = (String::new(), String::new());
    let (mut skipping, mut in_heading, mut heading_done) = (0usize, false, false);
    each_event(xhtml, |event| match event {
        Event::Start(tag) => {
            let name = tag.local_name();
            match name.as_ref() {
                b"script" | b"style" | b"head" => skipping += 1,
                b"h1" | b"h2" | b"h3" if !heading_done => in_heading = true,
                _ => {}
            }
            if is_block(name.as_ref()) {
                text.push('\n');
            }
        }
        Event::Empty(tag) if tag.local_name().as_ref() == b"br" => text.push('\n'),
        Event::End(tag) => {
            let name = tag.local_name();
            match name.as_ref() {
                b"script" | b"style" | b"head" => skipping = skipping.saturating_sub(1),
                b"h1" | b"h2" | b"h3" if in_heading => {
                    in_heading = false;
                    heading_done = !heading.trim().is_empty();
                }
                _ => {}
            }
            if is_block(name.as_ref()) {
                text.push('\n');
            }
        }
        Event::Text(t) if skipping == 0 => {
            let piece = t.decode().unwrap_or_default();
            if in_heading {
                heading.push_str(&piece);
            }
            text.push_str(&piece);
        }
        Event::CData(t) if skipping == 0 => text.push_str(&t.decode().unwrap_or_default()),
        Event::GeneralRef(r) if skipping == 0 => {
            let piece = entity(r).unwrap_or_default();
            if in_heading {
                heading.push_str(&piece);
            }
            text.push_str(&piece);
        }
        _ => {}
    });
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    let heading = heading.split_whitespace().collect::<Vec<_>>().join(" ");
    (lines.join("\n"), heading)
}

fn is_block(name: &[u8]) -> bool {
    matches!(
        name,
        b"p" | b"div"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"li"
            | b"tr"
            | b"section"
            | b"blockquote"
            | b"pre"
            | b"dt"
            | b"dd"
            | b"article"
            | b"aside"
    )
}

/// Whether `META-INF/encryption.xml` encrypts any chapter (fonts obfuscated for
/// embedding are not DRM).
fn chapters_encrypted(archive: &mut Archive) -> Result<bool> {
    if !archive.has("META-INF/encryption.xml") {
        return Ok(false);
    }
    let xml = archive.read("META-INF/encryption.xml")?;
    let mut encrypted = false;
    each_event(&xml, |event| {
        if let Event::Start(tag) | Event::Empty(tag) = event {
            if tag.local_name().as_ref() == b"CipherReference" {
                let uri = attribute(tag, b"URI")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if uri.ends_with(".xhtml") || uri.ends_with(".html") || uri.ends_with(".htm") {
                    encrypted = true;
                }
            }
        }
    });
    Ok(encrypted)
}

/// The chapters of an EPUB, in reading order (chapters with no text left out).
///
/// # Errors
///
/// `INVALID_PARAMS` (field `file`) for something that is not a readable EPUB, one with
/// too many entries or that unpacks too large, one whose spine points outside the
/// archive, or a DRM-protected one.
pub fn read_epub(bytes: &[u8]) -> Result<Vec<Chapter>> {
    let zip = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).map_err(|_| not_epub())?;
    if zip.len() > MAX_ENTRIES {
        return Err(bad(
            "EPUB 里的文件太多",
            "The EPUB holds too many files (at most 10000)",
        ));
    }
    let mut archive = Archive { zip, unpacked: 0 };
    if chapters_encrypted(&mut archive)? {
        return Err(drm());
    }
    let package = package_path(&mut archive)?;
    let opf = archive.read(&package)?;
    let (documents, toc) = spine(&opf, &folder(&package));
    if documents.is_empty() {
        return Err(bad(
            "EPUB 的目录（spine）是空的，或指向归档之外",
            "The EPUB's spine is empty or points outside the archive",
        ));
    }
    let titles = titles(&mut archive, toc);
    let mut chapters = Vec::new();
    for path in documents {
        let xhtml = archive.read(&path)?;
        let (text, heading) = chapter_text(&xhtml);
        if text.trim().is_empty() {
            continue;
        }
        let title = titles.get(&path).cloned().unwrap_or(heading);
        chapters.push(Chapter { title, text });
    }
    Ok(chapters)
}

#[cfg(test)]
#[path = "epub_tests.rs"]
mod tests;
