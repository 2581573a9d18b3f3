//! Finding a request's route: what one row of the route table ([`routes`](crate::routes))
//! holds — a [`RouteSpec`] with one [`Endpoint`] per method — and the [`Router`] that
//! matches paths against the table.

use futures::future::BoxFuture;
use http::{Method, Response};

use crate::api_error::ApiError;
use crate::body::Body;
use crate::ctx::{Ctx, Params};
use crate::openapi::operations::{Limits, Operation};

/// What answers one method of a route.
pub type Handler = fn(Ctx) -> BoxFuture<'static, Result<Response<Body>, ApiError>>;

/// The OpenAPI documentation of one method of a route, for a server with these limits.
pub type Documentation = fn(&Limits) -> Operation;

/// The methods routes serve (a plain `Copy` type, so the route table can be a `static`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Verb {
    /// The HTTP method.
    pub fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Put => Method::PUT,
            Self::Patch => Method::PATCH,
            Self::Delete => Method::DELETE,
        }
    }

    /// Its name (`GET`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// One method of a route: its handler and its documentation.
#[derive(Debug)]
pub struct Endpoint {
    /// The method.
    pub verb: Verb,
    /// What answers it.
    pub handler: Handler,
    /// What the OpenAPI document says of it.
    pub doc: Documentation,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A bearer token (an access token or an API key) is required.
    Token,
    /// Served without a token.
    Public,
    /// A browser page or its asset: served without a token, outside the API (not in the
    /// OpenAPI document).
    Page,
}

/// One row of the route table: a path and everything about it.
#[derive(Debug)]
pub struct RouteSpec {
    /// The route's name (`Book`, `Messages`): OpenAPI operation ids are the method and
    /// this (`getBook`).
    pub name: &'static str,
    /// The pattern without trailing slash (`{name}` for parameters); also the log label.
    pub pattern: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The methods served (OPTIONS is always answered too).
    pub endpoints: &'static [Endpoint],
}

impl RouteSpec {
    /// Served without a bearer token.
    pub fn is_public(&self) -> bool {
        self.access != Access::Token
    }

    /// A browser page or its asset (not part of the API).
    pub fn is_web_page(&self) -> bool {
        self.access == Access::Page
    }

    /// The methods served.
    pub fn methods(&self) -> Vec<Method> {
        self.endpoints.iter().map(|e| e.verb.method()).collect()
    }

    /// The endpoint serving `method`, if any.
    pub fn endpoint(&self, method: &Method) -> Option<&'static Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.verb.as_str() == method.as_str())
    }
}

/// Finds the route of a request path.
#[derive(Debug)]
pub struct Router(matchit::Router<&'static RouteSpec>);

impl Router {
    /// The router over `table`.
    ///
    /// # Errors
    ///
    /// When two rows' patterns conflict (a programming error).
    pub fn new(table: &'static [RouteSpec]) -> Result<Self, matchit::InsertError> {
        let mut router = matchit::Router::new();
        for spec in table {
            router.insert(spec.pattern, spec)?;
        }
        Ok(Self(router))
    }

    /// The route serving `path` (with or without one trailing slash) and its parameters.
    pub fn find(&self, path: &str) -> Option<(&'static RouteSpec, Params)> {
        let trimmed = match path.strip_suffix('/') {
            Some(rest) if !rest.is_empty() => rest,
            _ => path,
        };
        let matched = self.0.at(trimmed).ok()?;
        let params = matched
            .params
            .iter()
            .map(|(k, v)| (k.to_owned(), percent_decode(v)))
            .collect();
        Some((*matched.value, Params::new(params)))
    }
}

/// Decodes `%XX` escapes (UTF-8, lossy) in a path segment.
fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ROUTES;

    #[test]
    fn trailing_slash_is_optional() {
        let router = Router::new(ROUTES).unwrap();
        assert_eq!(router.find("/api/auth/me/").unwrap().0.name, "Me");
        assert_eq!(router.find("/api/auth/me").unwrap().0.name, "Me");
        assert!(router.find("/api/auth/me//").is_none());
        assert!(router.find("/api/nope/").is_none());
    }

    #[test]
    fn parameters_are_percent_decoded() {
        let router = Router::new(ROUTES).unwrap();
        let (spec, params) = router.find("/api/users/%E9%98%BF%E4%B9%A6/").unwrap();
        assert_eq!(spec.name, "PublicProfile");
        assert_eq!(params.get("username"), "阿书");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
