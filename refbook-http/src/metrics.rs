//! Prometheus metrics (`GET /metrics`): requests by route/method/status, latency
//! histograms, active streams, LLM time to first token and tokens by kind, replies by
//! status, book lookups by source and outcome, and the local model's queue and prefix
//! cache (zero with a remote model).
//!
//! One registry per server ([`Metrics::new`]), so two servers in one process (tests,
//! embedders) count apart; [`instrument`] connects a Refbook's book lookup chain and
//! generations to it.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use refbook_core::chat::LocalModelReport;
use refbook_core::chat::{GenerationObserver, GenerationReport, MessageStatus};
use refbook_core::RefbookBuilder;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    source: String,
    outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    streams: Gauge<i64, AtomicI64>,
    generations: Gauge<i64, AtomicI64>,
    first_token: Histogram,
    tokens: Family<KindLabels, Counter>,
    replies: Family<StatusLabels, Counter>,
    lookups: Family<LookupLabels, Counter>,
    local: LocalModelGauges,
}

/// The local model's queue and prefix cache, as its last report says (set at each render).
#[derive(Default)]
struct LocalModelGauges {
    waiting: Gauge<i64, AtomicI64>,
    started: Gauge<i64, AtomicI64>,
    waited_seconds: Gauge<f64, AtomicU64>,
    refused: Gauge<i64, AtomicI64>,
    prompt_tokens: Family<KindLabels, Gauge<i64, AtomicI64>>,
    cache_bytes: Gauge<i64, AtomicI64>,
    cache_entries: Gauge<i64, AtomicI64>,
}

impl LocalModelGauges {
    fn register(&self, registry: &mut Registry) {
        let local = registry.sub_registry_with_prefix("local_model");
        local.register(
            "queue_waiting",
            "Questions waiting for the local model",
            self.waiting.clone(),
        );
        local.register(
            "queue_started",
            "Requests the local model has started (since the process started)",
            self.started.clone(),
        );
        local.register(
            "queue_wait_seconds",
            "Seconds started requests waited for the local model, in total (divide by \
             queue_started for the mean)",
            self.waited_seconds.clone(),
        );
        local.register(
            "queue_refused",
            "Questions refused 503 SERVER_BUSY after waiting REFBOOK_LOCAL_QUEUE_TIMEOUT_SECS",
            self.refused.clone(),
        );
        local.register(
            "prompt_tokens",
            "Prompt tokens by kind: cached (from the prefix cache) or computed",
            self.prompt_tokens.clone(),
        );
        local.register(
            "prefix_cache_bytes",
            "Memory the prefix cache holds",
            self.cache_bytes.clone(),
        );
        local.register(
            "prefix_cache_prompts",
            "Prompts the prefix cache holds",
            self.cache_entries.clone(),
        );
    }

    fn set(&self, report: &LocalModelReport) {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.waiting.set(int(report.waiting));
        self.started.set(int(report.started));
        self.waited_seconds
            .set(Duration::from_micros(report.waited_micros).as_secs_f64());
        self.refused.set(int(report.refused_busy));
        for (kind, n) in [
            ("cached", report.prompt_tokens_cached),
            ("computed", report.prompt_tokens_computed),
        ] {
            self.prompt_tokens
                .get_or_create(&KindLabels {
                    kind: kind.to_owned(),
                })
                .set(int(n));
        }
        self.cache_bytes.set(int(report.cache_bytes));
        self.cache_entries.set(int(report.cache_entries));
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh set, counting from zero (one per server: tests can assert exact counts).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::fresh())
    }

    fn fresh() -> Self {
        let mut registry = Registry::with_prefix("refbook");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        let streams = Gauge::<i64, AtomicI64>::default();
        let generations = Gauge::<i64, AtomicI64>::default();
        let first_token = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let tokens = Family::<KindLabels, Counter>::default();
        let replies = Family::<StatusLabels, Counter>::default();
        let lookups = Family::<LookupLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency (to the response head)",
            latency.clone(),
        );
        registry.register("sse_streams_active", "Open SSE streams", streams.clone());
        registry.register(
            "generations_active",
            "Replies being generated",
            generations.clone(),
        );
        registry.register(
            "llm_time_to_first_token_seconds",
            "Time from asking the model to its first text",
            first_token.clone(),
        );
        registry.register(
            "llm_tokens",
            "LLM tokens by kind (prompt, completion, reasoning)",
            tokens.clone(),
        );
        registry.register("llm_replies", "Finished replies by status", replies.clone());
        registry.register(
            "book_lookups",
            "Book lookups by source and outcome",
            lookups.clone(),
        );
        let local = LocalModelGauges::default();
        local.register(&mut registry);
        Self {
            local,
            registry,
            requests,
            latency,
            streams,
            generations,
            first_token,
            tokens,
            replies,
            lookups,
        }
    }

    /// Records one answered request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts an open SSE stream until the guard is dropped.
    pub fn stream_opened(&self) -> StreamGuard {
        self.streams.inc();
        StreamGuard(self.streams.clone())
    }

    fn observe_generation(&self, report: &GenerationReport) {
        if let Some(first) = report.first_token {
            self.first_token.observe(first.as_secs_f64());
        }
        let count = |kind: &str, n: i64| {
            self.tokens
                .get_or_create(&KindLabels {
                    kind: kind.to_owned(),
                })
                .inc_by(u64::try_from(n).unwrap_or(0));
        };
        count("prompt", report.usage.prompt_tokens);
        count("completion", report.usage.completion_tokens);
        count("reasoning", report.reasoning_tokens);
        let status = match report.status {
            MessageStatus::Complete => "complete",
            MessageStatus::Partial => "partial",
            MessageStatus::Failed => "failed",
            MessageStatus::Generating => "generating",
        };
        self.replies
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    fn observe_lookup(&self, source: &str, outcome: &str) {
        self.lookups
            .get_or_create(&LookupLabels {
                source: source.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition, with `generations_active` set to `generating` and
    /// the local model's figures to `local` (`None` for a remote model: they stay zero).
    pub fn render(&self, generating: usize, local: Option<&LocalModelReport>) -> String {
        self.generations
            .set(i64::try_from(generating).unwrap_or(i64::MAX));
        if let Some(report) = local {
            self.local.set(report);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Decrements the open-stream gauge when dropped.
#[derive(Debug)]
pub struct StreamGuard(Gauge<i64, AtomicI64>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Connects a Refbook's book lookups and generations to `metrics` (give the same set to
/// the server: [`serve_with`](crate::server::serve_with),
/// [`RunningServer::start_with`](crate::RunningServer::start_with)).
pub fn instrument(builder: RefbookBuilder, metrics: &Arc<Metrics>) -> RefbookBuilder {
    let (for_generations, for_lookups) = (metrics.clone(), metrics.clone());
    let generations: GenerationObserver =
        Arc::new(move |report| for_generations.observe_generation(report));
    builder
        .lookup_observer(Arc::new(move |source, outcome| {
            for_lookups.observe_lookup(source, outcome)
        }))
        .generation_observer(generations)
}
