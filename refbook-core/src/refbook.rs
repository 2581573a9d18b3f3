//! [`Refbook`]: the façade that wires every service from a [`Config`].

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{Accounts, HttpWeChat, Tokens, WeChat};
use crate::books::{configured_sources, BookSource, Books, LookupObserver};
use crate::chat::{Answering, ChatLimits, Conversations, GenerationObserver};
use crate::cluster::Cluster;
use crate::config::{Config, LlmProvider};
use crate::embed::{EmbedRef, Embedder, EmbedderSource, DEFAULT_EMBED_MODEL};
use crate::error::{Error, Result};
use crate::guide::{GuideSettings, Guides};
#[cfg(feature = "local-model")]
use crate::llm::LogProgress;
use crate::llm::{ChatModel, DownloadProgress, OpenAiCompatible, Timeouts, Unconfigured};
use crate::rate_limit::RateLimiter;
use crate::store::{SqlStore, Store};
use crate::timestamp::Clock;

pub use crate::upstream::USER_AGENT;

/// The settings key under which a generated JWT secret is kept.
const JWT_SECRET_SETTING: &str = "jwt_secret";

/// Everything Refbook does, behind one handle; cheap to share (`Arc` inside).
#[derive(Clone, Debug)]
pub struct Refbook {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    accounts: Accounts,
    books: Arc<Books>,
    guides: Arc<Guides>,
    conversations: Conversations,
    answering: Answering,
    cluster: Option<Cluster>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Refbook {
    /// A builder starting from `config`.
    pub fn builder(config: Config) -> RefbookBuilder {
        RefbookBuilder {
            config,
            store: None,
            wechat: None,
            book_sources: None,
            lookup_observer: None,
            model: None,
            guide_settings: None,
            generation_observer: None,
            download_progress: None,
            clock: None,
            embedder: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The accounts service.
    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    /// The books service.
    pub fn books(&self) -> &Books {
        &self.inner.books
    }

    /// Books' guides (深度解析).
    pub fn guides(&self) -> &Guides {
        &self.inner.guides
    }

    /// The other instances, when they share replies and limits through Redis.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.inner.cluster.as_ref()
    }

    /// A limiter of `per_minute` actions per client IP and per account (`None` when 0: no
    /// limit), counted in Redis under keys named `name` when the instances share one, so
    /// that every instance draws on one allowance.
    pub fn rate_limiter(&self, per_minute: u32, name: &'static str) -> Option<RateLimiter> {
        let limiter = RateLimiter::new(per_minute)?;
        Some(match self.cluster() {
            Some(cluster) => limiter.shared(cluster.clone(), name),
            None => limiter,
        })
    }

    /// Conversations, their messages and personas, as stored.
    pub fn conversations(&self) -> &Conversations {
        &self.inner.conversations
    }

    /// Asking the model: questions, regeneration, the stateless chat, completions, and
    /// the replies once started.
    pub fn answering(&self) -> &Answering {
        &self.inner.answering
    }

    /// Closes the store (at shutdown).
    pub async fn close(&self) {
        self.inner.store.close().await;
    }
}

/// Builds a [`Refbook`]; every seam can be replaced before [`build`](Self::build).
pub struct RefbookBuilder {
    config: Config,
    store: Option<Arc<dyn Store>>,
    wechat: Option<Arc<dyn WeChat>>,
    book_sources: Option<Vec<Arc<dyn BookSource>>>,
    lookup_observer: Option<LookupObserver>,
    model: Option<Arc<dyn ChatModel>>,
    guide_settings: Option<GuideSettings>,
    generation_observer: Option<GenerationObserver>,
    download_progress: Option<Arc<dyn DownloadProgress>>,
    clock: Option<Arc<dyn Clock>>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl RefbookBuilder {
    /// Uses these book sources, in order, instead of the configured ones.
    pub fn book_sources(mut self, sources: Vec<Arc<dyn BookSource>>) -> Self {
        self.book_sources = Some(sources);
        self
    }

    /// Builds guides with these timings (tests shorten them).
    pub fn guide_settings(mut self, settings: GuideSettings) -> Self {
        self.guide_settings = Some(settings);
        self
    }

    /// Uses this model instead of the configured OpenAI-compatible one.
    pub fn model(mut self, model: Arc<dyn ChatModel>) -> Self {
        self.model = Some(model);
        self
    }

    /// Uses this sentence embedder for books' texts instead of the configured one
    /// (`REFBOOK_EMBED_MODEL`).
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Reports the local model's download to `progress` (a terminal's progress bar);
    /// unset: log lines.
    pub fn download_progress(mut self, progress: Arc<dyn DownloadProgress>) -> Self {
        self.download_progress = Some(progress);
        self
    }

    /// Reports every finished generation to `observer` (metrics).
    pub fn generation_observer(mut self, observer: GenerationObserver) -> Self {
        self.generation_observer = Some(observer);
        self
    }

    /// Reports every book lookup outcome to `observer` (metrics).
    pub fn lookup_observer(mut self, observer: LookupObserver) -> Self {
        self.lookup_observer = Some(observer);
        self
    }

    /// Reads the time from `clock` (tests move it to expire tokens without waiting).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this store instead of connecting to `config.database_url`.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this WeChat identity provider instead of the configured HTTP client.
    pub fn wechat(mut self, wechat: Arc<dyn WeChat>) -> Self {
        self.wechat = Some(wechat);
        self
    }

    /// Connects (and migrates) the store if none was given, settles the JWT secret and
    /// wires the services.
    ///
    /// # Errors
    ///
    /// `Internal` when the database cannot be opened or migrated or the HTTP client cannot
    /// be built; `InvalidInput` for an unusable `REFBOOK_REDIS_URL` or local model
    /// reference.
    pub async fn build(self) -> Result<Refbook> {
        let config = self.config;
        let store: Arc<dyn Store> = match self.store {
            Some(store) => store,
            None => Arc::new(
                SqlStore::connect(&config.database.url)
                    .await
                    .map_err(Error::internal)?,
            ),
        };
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(crate::upstream::same_origin_redirects())
            .build()
            .map_err(Error::internal)?;
        let secret = match &config.accounts.jwt_secret {
            Some(secret) => secret.expose().to_owned(),
            None => {
                store
                    .setting_or_init(JWT_SECRET_SETTING, &crate::accounts::tokens::random_token())
                    .await?
            }
        };
        let tokens = Tokens::new(
            secret.as_bytes(),
            config.accounts.access_ttl_secs,
            config.accounts.refresh_ttl_secs,
        );
        let wechat = self.wechat.or_else(|| {
            let appid = config.wechat.appid.clone()?;
            let secret = config.wechat.secret.clone()?;
            let client: Arc<dyn WeChat> = Arc::new(HttpWeChat::new(
                http.clone(),
                config.wechat.base_url.clone(),
                appid,
                secret,
            ));
            Some(client)
        });
        let cluster = match &config.cluster.url {
            Some(url) => Some(
                Cluster::connect(url.expose(), &config.cluster.prefix).map_err(|err| {
                    Error::invalid(
                        "redis_url",
                        format!("REFBOOK_REDIS_URL 无效：{err}"),
                        format!("REFBOOK_REDIS_URL is not usable: {err}"),
                    )
                })?,
            ),
            None => None,
        };
        let mut accounts =
            Accounts::new(store.clone(), tokens, wechat, config.chat.daily_token_quota)
                .with_refresh_reuse_grace(Duration::from_secs(
                    config.accounts.refresh_reuse_grace_secs,
                ))
                .with_auth_cache(Duration::from_secs(config.accounts.auth_cache_secs));
        if let Some(cluster) = &cluster {
            accounts = accounts.with_cluster(cluster.clone());
        }
        if let Some(clock) = self.clock {
            accounts = accounts.with_clock(clock);
        }
        let sources = match self.book_sources {
            Some(sources) => sources,
            None => configured_sources(&config.books, &store, &http)?,
        };
        let embedder = match self.embedder {
            Some(embedder) => EmbedderSource::provided(embedder),
            None => configured_embedder(&config)?,
        };
        let foreground = embedder.foreground().clone();
        let books = Arc::new(Books::new(
            &config.books,
            config.general.public_url.as_deref(),
            store.clone(),
            sources,
            self.lookup_observer,
            Arc::new(embedder),
        )?);
        let has_own_model = self.model.is_some();
        let model: Arc<dyn ChatModel> = match (self.model, config.provider()) {
            (Some(model), _) => model,
            (None, LlmProvider::Local) => local_model(&config, self.download_progress, foreground)?,
            (None, LlmProvider::OpenAi) => Arc::new(
                OpenAiCompatible::new(
                    http.clone(),
                    &config.llm.base_url,
                    config.llm.api_key.clone(),
                    &config.llm.model,
                    Timeouts {
                        connect: Duration::from_secs(config.llm.connect_timeout_secs.max(1)),
                        first_data: Duration::from_secs(config.llm.first_data_timeout_secs.max(1)),
                        idle: Duration::from_secs(config.llm.idle_timeout_secs.max(1)),
                    },
                )
                .with_prefix_continuation(config.llm.continuation.prefix_for(&config.llm.base_url))
                .with_tool_passthrough(config.llm.passthrough_tools),
            ),
            (None, LlmProvider::Off) => Arc::new(Unconfigured {
                model: config.llm.model.clone(),
            }),
        };
        // Replies are settled by lease, not by process start: answering sweeps at once
        // and then periodically, and never touches a reply whose owner is alive.
        let guides = Arc::new(Guides::start(
            store.clone(),
            books.clone(),
            (model.clone(), config.model_window().0),
            &config.books,
            config.provider() != LlmProvider::Off || has_own_model,
            self.guide_settings.unwrap_or_default(),
        ));
        let (conversations, answering) = crate::chat::services(
            store.clone(),
            books.clone(),
            guides.clone(),
            model,
            ChatLimits::new(
                &config.chat,
                config.model_window(),
                config.llm.max_reply_bytes,
            ),
            self.generation_observer,
            cluster.clone(),
        );
        Ok(Refbook {
            inner: Arc::new(Inner {
                config,
                store,
                accounts,
                books,
                guides,
                conversations,
                answering,
                cluster,
            }),
        })
    }
}

/// The embedder `REFBOOK_EMBED_MODEL` names: unset, the default one in a build with the
/// local model, else none.
fn configured_embedder(config: &Config) -> Result<EmbedderSource> {
    let reference = match config.books.embed_model.as_deref() {
        Some(reference) => reference,
        None if cfg!(feature = "local-model") => DEFAULT_EMBED_MODEL,
        None => "off",
    };
    let reference = EmbedRef::parse(reference).map_err(|why| {
        Error::invalid(
            "embed_model",
            format!("REFBOOK_EMBED_MODEL 无效：{why}"),
            format!("REFBOOK_EMBED_MODEL is not usable: {why}"),
        )
    })?;
    Ok(EmbedderSource::new(
        reference,
        config.local.cache.clone(),
        config.local.hf_endpoint.clone(),
    ))
}

/// The local model `config` names (the default one when it names none), downloaded and
/// loaded on first use; its readers' answers are announced to `foreground`.
#[cfg(feature = "local-model")]
fn local_model(
    config: &Config,
    progress: Option<Arc<dyn DownloadProgress>>,
    foreground: Arc<crate::foreground::Foreground>,
) -> Result<Arc<dyn ChatModel>> {
    use crate::llm::local::{Downloader, LazyLocalModel, LocalSettings, ModelRef};
    let reference = config
        .local
        .model
        .as_deref()
        .unwrap_or(crate::llm::local::DEFAULT_LOCAL_MODEL);
    let source = ModelRef::parse(reference, &config.local.hf_endpoint).map_err(|why| {
        Error::invalid(
            "local_model",
            format!("REFBOOK_LOCAL_MODEL 无效：{why}"),
            format!("REFBOOK_LOCAL_MODEL is not usable: {why}"),
        )
    })?;
    let downloader = Downloader::new(USER_AGENT).map_err(Error::internal)?;
    let model = LazyLocalModel::new(
        source,
        config.local.cache.clone(),
        LocalSettings {
            path: std::path::PathBuf::new(),
            threads: config.local.threads,
            context_tokens: usize::try_from(config.local.context_tokens).unwrap_or(usize::MAX),
            max_reply_tokens: usize::try_from(config.local.max_tokens).unwrap_or(usize::MAX),
            cache_bytes: usize::try_from(config.local.cache_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            queue_timeout: std::time::Duration::from_secs(config.local.queue_timeout_secs),
            foreground,
        },
        downloader,
        progress.unwrap_or_else(|| Arc::new(LogProgress::default())),
    );
    Ok(Arc::new(model))
}

/// Without the `local-model` feature there is no local model (the configuration refuses
/// `llm_provider = local`); a hand-built `Config` gets the unconfigured model.
#[cfg(not(feature = "local-model"))]
fn local_model(
    config: &Config,
    _progress: Option<Arc<dyn DownloadProgress>>,
    _foreground: Arc<crate::foreground::Foreground>,
) -> Result<Arc<dyn ChatModel>> {
    Ok(Arc::new(Unconfigured {
        model: config.llm.model.clone(),
    }))
}
