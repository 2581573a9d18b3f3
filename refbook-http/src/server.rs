//! The accept loop: HTTP/1.1 and HTTP/2 on one listener, graceful shutdown, upkeep.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use refbook_core::{Error, Refbook};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::connections;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::settings::HttpSettings;

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often expired sessions and idle rate-limit keys are dropped.
const UPKEEP_EVERY: Duration = Duration::from_secs(3600);

/// Serves `refbook` on `listener` with the server's `settings` until `shutdown` resolves,
/// then stops accepting and waits (bounded) for open connections to finish. Its metrics
/// count requests and streams; use [`serve_with`] to count generations and lookups too.
///
/// # Errors
///
/// `Internal` when the route table does not build (a programming error).
pub async fn serve(
    listener: TcpListener,
    refbook: Refbook,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    serve_with(listener, refbook, settings, Metrics::new(), shutdown).await
}

/// As [`serve`], counting into `metrics` (the set `refbook` was
/// [`instrument`](crate::metrics::instrument)ed with).
pub async fn serve_with(
    listener: TcpListener,
    refbook: Refbook,
    settings: HttpSettings,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let openapi = crate::openapi::document(refbook.config());
    let app = App::new(refbook, settings, metrics, openapi);
    let pipeline = Pipeline::new(app.clone())?;
    let config = app.settings();
    let idle = Duration::from_secs(config.idle_timeout_secs.max(1));
    let request = Duration::from_secs(config.request_timeout_secs.max(1));
    let open_files = connections::raise_open_file_limit();
    let cap = connections::connection_cap(config.max_connections, open_files);
    tracing::info!(open_files, max_connections = cap, "connection limits");
    let slots = connections::Slots::new(cap);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // HTTP/1: the header timer also runs while a kept-alive connection waits for its next
    // request, so it is the shorter of the request and idle limits.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(request.min(idle));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(idle))
        .keep_alive_timeout(Duration::from_secs(20));
    let mut backoff = connections::AcceptBackoff::default();
    let graceful = GracefulShutdown::new();
    // Tells connections still waiting for their first byte to give up at shutdown (they
    // hold a watcher that graceful shutdown would otherwise wait for).
    let (stopping, stop_waiting) = tokio::sync::watch::channel(false);
    let upkeep = tokio::spawn(upkeep(app.clone()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        backoff.failed(&err).await;
                        continue;
                    }
                };
                backoff.succeeded();
                let Some(slot) = slots.take() else {
                    tokio::spawn(connections::shed(stream));
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let pipeline = pipeline.clone();
                let service = service_fn(move |req| {
                    let pipeline = pipeline.clone();
                    async move { Ok::<_, Infallible>(pipeline.handle(req, peer).await) }
                });
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let mut stop_waiting = stop_waiting.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    // A connection that never sends a byte is closed after the idle limit,
                    // or at once when the server stops.
                    tokio::select! {
                        sent = connections::first_byte(&stream, idle) => if !sent { return },
                        _ = stop_waiting.wait_for(|stop| *stop) => return,
                    }
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    if let Err(err) = watcher.watch(connection).await {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    stopping.send_replace(true);
    upkeep.abort();
    tracing::info!("shutting down: finishing replies being generated");
    // Replies end first (finished, or stopped and stored as partial), so their streams
    // close with `[DONE]`; then the connections.
    let grace = Duration::from_secs(app.settings().shutdown_grace_secs);
    app.refbook().answering().shutdown(grace).await;
    tracing::info!("shutting down: waiting for open connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing");
    }
    app.refbook().close().await;
    Ok(())
}

async fn upkeep(app: App) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        every.tick().await;
        app.maintain().await;
    }
}

/// A server running in the background (tests, embedders): its address and a stop switch.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl RunningServer {
    /// Binds `addr` (port 0 picks a free port) and serves `refbook` with the default
    /// [`HttpSettings`] on a background task.
    ///
    /// # Errors
    ///
    /// `Internal` when `addr` cannot be bound.
    pub async fn start(refbook: Refbook, addr: SocketAddr) -> Result<Self, Error> {
        let settings = HttpSettings {
            bind: addr,
            ..HttpSettings::default()
        };
        Self::start_with(refbook, settings, Metrics::new()).await
    }

    /// Binds `settings.bind` and serves `refbook` with `settings`, counting into `metrics`
    /// (the set `refbook` was [`instrument`](crate::metrics::instrument)ed with).
    ///
    /// # Errors
    ///
    /// `Internal` when the address cannot be bound.
    pub async fn start_with(
        refbook: Refbook,
        settings: HttpSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(settings.bind)
            .await
            .map_err(Error::internal)?;
        let addr = listener.local_addr().map_err(Error::internal)?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve_with(listener, refbook, settings, metrics, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr` for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, waits for connections to finish, and returns how serving ended.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.map_err(Error::internal)?
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
