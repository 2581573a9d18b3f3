//! The browser face: `GET /docs` (Swagger UI over `/api/openapi.json`) and
//! `GET /playground` (a small page to talk with a book). Every asset is compiled into the
//! binary — Swagger UI from the `swagger-ui-redist` crate, the playground from `web/` —
//! so the pages work offline and fetch nothing from anywhere but this server.
//! `REFBOOK_WEB=false` turns both off (they answer `404`).

use std::sync::OnceLock;

use http::{header, HeaderValue, Response};
use swagger_ui_redist::{SwaggerUi, SwaggerUiStaticFile};

use crate::api_error::ApiError;
use crate::body::{full, Body};
use crate::ctx::Ctx;

/// The path the Swagger UI page and its assets are served under.
const DOCS_PATH: &str = "/docs";

/// The playground's files: name, content type, bytes.
const PLAYGROUND_FILES: &[(&str, &str, &[u8])] = &[
    (
        "playground.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/playground.js"),
    ),
    (
        "playground.css",
        "text/css; charset=utf-8",
        include_bytes!("../web/playground.css"),
    ),
];

/// The playground's page.
const PLAYGROUND_HTML: &str = include_str!("../web/playground.html");

/// What the pages may load: this server only (the playground may also show a cover
/// straight from its source when the cover proxy is off).
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const PLAYGROUND_POLICY: &str = "default-src 'self'; img-src 'self' data: https: http:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `GET /docs`: the interactive API reference.
pub async fn docs_page(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    enabled(&ctx)?;
    static PAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        let mut ui = SwaggerUi::new();
        ui.title("Refbook API");
        for file in SwaggerUiStaticFile::all() {
            ui.override_file_path(*file, format!("{DOCS_PATH}/{}", file.file_name()));
        }
        ui.config()
            .urls(["/api/openapi.json"])
            .persist_authorization(true)
            .display_request_duration(true)
            .filter(true)
            .validator_url("none");
        ui.serve().map_err(|e| e.to_string())
    });
    match page {
        Ok(html) => Ok(page_response(
            "text/html; charset=utf-8",
            html.clone(),
            DOCS_POLICY,
        )),
        Err(reason) => Err(ApiError::from(refbook_core::Error::internal(format!(
            "swagger ui page: {reason}"
        )))),
    }
}

/// `GET /docs/{file}`: one of Swagger UI's files.
pub async fn docs_asset(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    enabled(&ctx)?;
    let name = ctx.params.get("file");
    let (_, bytes) = SwaggerUi::static_files()
        .iter()
        .find(|(file, _)| file.file_name() == name)
        .ok_or_else(ApiError::no_route)?;
    let content_type = match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "image/png",
    };
    Ok(asset_response(content_type, bytes))
}

/// `GET /playground`: the page to talk with a book.
pub async fn playground_page(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    enabled(&ctx)?;
    Ok(page_response(
        "text/html; charset=utf-8",
        PLAYGROUND_HTML,
        PLAYGROUND_POLICY,
    ))
}

/// `GET /playground/{file}`: the playground's script and style.
pub async fn playground_asset(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    enabled(&ctx)?;
    let name = ctx.params.get("file");
    let (_, content_type, bytes) = PLAYGROUND_FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or_else(ApiError::no_route)?;
    Ok(asset_response(content_type, bytes))
}

/// `404` unless the pages are on.
fn enabled(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.app.settings().web {
        Ok(())
    } else {
        Err(ApiError::no_route())
    }
}

fn page_response(
    content_type: &'static str,
    html: impl Into<bytes::Bytes>,
    policy: &'static str,
) -> Response<Body> {
    with_headers(
        html,
        &[
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
}

fn asset_response(content_type: &'static str, bytes: &'static [u8]) -> Response<Body> {
    // Assets change only with the binary: cached for an hour, then revalidated.
    with_headers(
        bytes,
        &[
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
    )
}

fn with_headers(
    body: impl Into<bytes::Bytes>,
    headers: &[(header::HeaderName, &'static str)],
) -> Response<Body> {
    let mut response = Response::new(full(body));
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}
