//! The route table: every path the server answers, its methods, and whether it needs a
//! bearer token. Paths are matched with and without their trailing slash.

use http::Method;

/// One endpoint of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// `GET /api/openapi.json`
    OpenApi,
    /// `POST /api/auth/register/`
    Register,
    /// `POST /api/auth/login/`
    Login,
    /// `POST /api/auth/token/` (OAuth2 password grant)
    Token,
    /// `POST /api/auth/login/wechat/`
    WeChatLogin,
    /// `POST /api/auth/refresh/`
    Refresh,
    /// `POST /api/auth/logout/`
    Logout,
    /// `GET /api/auth/me/`
    Me,
    /// `GET|PUT|PATCH /api/user/profile/`
    Profile,
    /// `POST /api/user/password/`
    Password,
    /// `DELETE /api/user/`
    DeleteAccount,
    /// `GET /api/users/{username}/`
    PublicProfile,
    /// `GET /api/books/?q=`
    Books,
    /// `GET /api/books/{isbn}/`
    Book,
    /// `GET /api/books/{isbn}/cover/` (no auth)
    BookCover,
    /// `GET|POST /api/personas/`
    Personas,
    /// `GET|DELETE /api/personas/{id}/`
    Persona,
    /// `GET|POST /api/conversations/`
    Conversations,
    /// `GET|PATCH|DELETE /api/conversations/{id}/`
    Conversation,
    /// `POST /api/conversations/{id}/messages/`
    Messages,
    /// `DELETE /api/conversations/{id}/messages/{mid}/`
    Message,
    /// `POST /api/conversations/{id}/regenerate/`
    Regenerate,
    /// `POST /api/conversations/{id}/stop/`
    Stop,
    /// `GET /api/conversations/{id}/stream/`
    Stream,
    /// `GET /api/conversations/{id}/reply/`
    ReplyPoll,
    /// `POST /api/chat/stream/`
    ChatStream,
    /// `GET /api/user/history/`
    History,
    /// `DELETE /api/user/history/{id}/`
    HistoryItem,
    /// `GET|POST /api/user/collections/`
    Collections,
    /// `DELETE /api/user/collections/{isbn}/`
    CollectionItem,
    /// `GET|POST /api/user/api-keys/`
    ApiKeys,
    /// `DELETE /api/user/api-keys/{id}/`
    ApiKey,
    /// `GET /v1/models` (OpenAI-compatible)
    OpenAiModels,
    /// `GET /v1/models/{model}` (OpenAI-compatible)
    OpenAiModel,
    /// `POST /v1/chat/completions` (OpenAI-compatible)
    OpenAiChatCompletions,
    /// `GET /docs`: the interactive API reference (a web page)
    DocsPage,
    /// `GET /docs/{file}`: its assets
    DocsAsset,
    /// `GET /playground`: talk with a book in the browser (a web page)
    Playground,
    /// `GET /playground/{file}`: its assets
    PlaygroundAsset,
}

impl Route {
    /// A browser page or its asset: served outside the API (not in the OpenAPI document).
    pub fn is_web_page(self) -> bool {
        matches!(
            self,
            Self::DocsPage | Self::DocsAsset | Self::Playground | Self::PlaygroundAsset
        )
    }
}

/// The path prefix of the OpenAI-compatible face, whose errors take OpenAI's shape.
pub const OPENAI_PREFIX: &str = "/v1/";

/// A route with its path pattern, methods and authentication rule.
#[derive(Debug)]
pub struct RouteSpec {
    /// Which endpoint.
    pub route: Route,
    /// The pattern without trailing slash (`{name}` for parameters); also the log label.
    pub pattern: &'static str,
    /// Methods served (OPTIONS is always answered too).
    pub methods: &'static [Method],
    /// Served without a bearer token.
    pub public: bool,
}

const fn spec(
    route: Route,
    pattern: &'static str,
    methods: &'static [Method],
    public: bool,
) -> RouteSpec {
    RouteSpec {
        route,
        pattern,
        methods,
        public,
    }
}

/// Every route.
pub static ROUTES: &[RouteSpec] = &[
    spec(Route::Healthz, "/healthz", &[Method::GET], true),
    spec(Route::Readyz, "/readyz", &[Method::GET], true),
    spec(Route::Metrics, "/metrics", &[Method::GET], true),
    spec(Route::OpenApi, "/api/openapi.json", &[Method::GET], true),
    spec(Route::Register, "/api/auth/register", &[Method::POST], true),
    spec(Route::Login, "/api/auth/login", &[Method::POST], true),
    spec(Route::Token, "/api/auth/token", &[Method::POST], true),
    spec(
        Route::WeChatLogin,
        "/api/auth/login/wechat",
        &[Method::POST],
        true,
    ),
    spec(Route::Refresh, "/api/auth/refresh", &[Method::POST], true),
    spec(Route::Logout, "/api/auth/logout", &[Method::POST], false),
    spec(Route::Me, "/api/auth/me", &[Method::GET], false),
    spec(
        Route::Profile,
        "/api/user/profile",
        &[Method::GET, Method::PUT, Method::PATCH],
        false,
    ),
    spec(
        Route::Password,
        "/api/user/password",
        &[Method::POST],
        false,
    ),
    spec(Route::DeleteAccount, "/api/user", &[Method::DELETE], false),
    spec(
        Route::PublicProfile,
        "/api/users/{username}",
        &[Method::GET],
        false,
    ),
    spec(Route::Books, "/api/books", &[Method::GET], false),
    spec(Route::Book, "/api/books/{isbn}", &[Method::GET], false),
    spec(
        Route::BookCover,
        "/api/books/{isbn}/cover",
        &[Method::GET],
        true,
    ),
    spec(
        Route::Personas,
        "/api/personas",
        &[Method::GET, Method::POST],
        false,
    ),
    spec(
        Route::Persona,
        "/api/personas/{id}",
        &[Method::GET, Method::DELETE],
        false,
    ),
    spec(
        Route::Conversations,
        "/api/conversations",
        &[Method::GET, Method::POST],
        false,
    ),
    spec(
        Route::Conversation,
        "/api/conversations/{id}",
        &[Method::GET, Method::PATCH, Method::DELETE],
        false,
    ),
    spec(
        Route::Messages,
        "/api/conversations/{id}/messages",
        &[Method::POST],
        false,
    ),
    spec(
        Route::Message,
        "/api/conversations/{id}/messages/{mid}",
        &[Method::DELETE],
        false,
    ),
    spec(
        Route::Regenerate,
        "/api/conversations/{id}/regenerate",
        &[Method::POST],
        false,
    ),
    spec(
        Route::Stop,
        "/api/conversations/{id}/stop",
        &[Method::POST],
        false,
    ),
    spec(
        Route::Stream,
        "/api/conversations/{id}/stream",
        &[Method::GET],
        false,
    ),
    spec(
        Route::ReplyPoll,
        "/api/conversations/{id}/reply",
        &[Method::GET],
        false,
    ),
    spec(
        Route::ChatStream,
        "/api/chat/stream",
        &[Method::POST],
        false,
    ),
    spec(Route::History, "/api/user/history", &[Method::GET], false),
    spec(
        Route::HistoryItem,
        "/api/user/history/{id}",
        &[Method::DELETE],
        false,
    ),
    spec(
        Route::Collections,
        "/api/user/collections",
        &[Method::GET, Method::POST],
        false,
    ),
    spec(
        Route::CollectionItem,
        "/api/user/collections/{isbn}",
        &[Method::DELETE],
        false,
    ),
    spec(
        Route::ApiKeys,
        "/api/user/api-keys",
        &[Method::GET, Method::POST],
        false,
    ),
    spec(
        Route::ApiKey,
        "/api/user/api-keys/{id}",
        &[Method::DELETE],
        false,
    ),
    spec(Route::OpenAiModels, "/v1/models", &[Method::GET], false),
    spec(
        Route::OpenAiModel,
        "/v1/models/{model}",
        &[Method::GET],
        false,
    ),
    spec(
        Route::OpenAiChatCompletions,
        "/v1/chat/completions",
        &[Method::POST],
        false,
    ),
    spec(Route::DocsPage, "/docs", &[Method::GET], true),
    spec(Route::DocsAsset, "/docs/{file}", &[Method::GET], true),
    spec(Route::Playground, "/playground", &[Method::GET], true),
    spec(
        Route::PlaygroundAsset,
        "/playground/{file}",
        &[Method::GET],
        true,
    ),
];

/// Path parameters of a matched route, by name.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The value of parameter `name` (empty if absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Finds the route of a request path.
#[derive(Debug)]
pub struct Router(matchit::Router<&'static RouteSpec>);

impl Router {
    /// The router over [`ROUTES`].
    pub fn new() -> Result<Self, matchit::InsertError> {
        let mut router = matchit::Router::new();
        for spec in ROUTES {
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
        Some((*matched.value, Params(params)))
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

    #[test]
    fn trailing_slash_is_optional() {
        let router = Router::new().unwrap();
        assert_eq!(router.find("/api/auth/me/").unwrap().0.route, Route::Me);
        assert_eq!(router.find("/api/auth/me").unwrap().0.route, Route::Me);
        assert!(router.find("/api/auth/me//").is_none());
        assert!(router.find("/api/nope/").is_none());
    }

    #[test]
    fn parameters_are_percent_decoded() {
        let router = Router::new().unwrap();
        let (spec, params) = router.find("/api/users/%E9%98%BF%E4%B9%A6/").unwrap();
        assert_eq!(spec.route, Route::PublicProfile);
        assert_eq!(params.get("username"), "阿书");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
