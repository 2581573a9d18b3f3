//! What a cover may be: exactly one raster image type from a short list, declared by the
//! host and confirmed by the bytes' own signature. Anything else (a list of types, SVG,
//! HTML dressed as an image) is never stored or served, so a cover can never run script
//! on the API's origin.

/// The image types a cover may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverType {
    /// `image/jpeg` (`image/jpg` is read as this).
    Jpeg,
    /// `image/png`.
    Png,
    /// `image/gif`.
    Gif,
    /// `image/webp`.
    Webp,
    /// `image/avif`.
    Avif,
}

impl CoverType {
    /// The media type served for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
        }
    }

    /// The type a `Content-Type` header declares: exactly one media type of the list
    /// (parameters after `;` ignored). A list (`image/png,text/html`), SVG or any other
    /// type is `None`.
    pub fn declared(header: &str) -> Option<Self> {
        let essence = header.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            "image/gif" => Some(Self::Gif),
            "image/webp" => Some(Self::Webp),
            "image/avif" => Some(Self::Avif),
            _ => None,
        }
    }

    /// The type the bytes' signature (magic number) names, if one of the list.
    pub fn sniffed(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else if bytes.len() >= 12
            && &bytes[4..8] == b"ftyp"
            && matches!(&bytes[8..12], b"avif" | b"avis")
        {
            Some(Self::Avif)
        } else {
            None
        }
    }

    /// The one type a cover is served as: the declared type when the bytes confirm it,
    /// otherwise `None` (the cover is refused).
    pub fn checked(header: &str, bytes: &[u8]) -> Option<Self> {
        let declared = Self::declared(header)?;
        (Self::sniffed(bytes) == Some(declared)).then_some(declared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];

    #[test]
    fn one_listed_type_confirmed_by_the_bytes_is_accepted() {
        assert_eq!(CoverType::checked("image/png", PNG), Some(CoverType::Png));
        assert_eq!(
            CoverType::checked("IMAGE/JPEG; charset=binary", JPEG),
            Some(CoverType::Jpeg)
        );
        assert_eq!(CoverType::checked("image/jpg", JPEG), Some(CoverType::Jpeg));
        let gif = b"GIF89a\x01\0\x01\0";
        assert_eq!(CoverType::checked("image/gif", gif), Some(CoverType::Gif));
        let webp = b"RIFF\x24\0\0\0WEBPVP8 ";
        assert_eq!(
            CoverType::checked("image/webp", webp),
            Some(CoverType::Webp)
        );
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0";
        assert_eq!(
            CoverType::checked("image/avif", avif),
            Some(CoverType::Avif)
        );
    }

    #[test]
    fn lists_svg_html_and_mismatched_bytes_are_refused() {
        for header in [
            "image/png,text/html",
            "image/gif, image/svg+xml",
            "image/svg+xml",
            "text/html",
            "image/*",
            "",
            "image/png text/html",
        ] {
            assert_eq!(CoverType::checked(header, PNG), None, "{header}");
        }
        let html = b"<html><script>alert(1)</script></html>";
        assert_eq!(CoverType::checked("image/png", html), None);
        // A JPEG declared as PNG: the declaration is not what the bytes are.
        assert_eq!(CoverType::checked("image/png", JPEG), None);
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>";
        assert_eq!(CoverType::checked("image/gif", svg), None);
    }
}
