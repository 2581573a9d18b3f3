//! The `instances` scenario, in one run: the mock model called directly; one instance
//! without Redis; one instance with Redis; two instances on one database and one Redis
//! (clients spread over both, as a round-robin balancer would).

use anyhow::Context;
use refbook_benches::fast_mock::FastMock;

use crate::chat::{direct, ms, through, ChatRun};
use crate::server::{rss_kib, Server};
use crate::Options;

pub(crate) async fn instances(options: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.database_url.is_some(),
        "instances needs --database-url: one database both instances share"
    );
    anyhow::ensure!(
        options.redis_url.is_some(),
        "instances needs --redis-url: the Redis both instances share"
    );
    let fast = FastMock::start(50).await?;
    let clients = options.concurrency;
    let requests = options.requests;

    let mock = direct(&fast.url(), clients, requests, options.seconds).await;
    let alone = {
        let without_redis = Options {
            redis_url: None,
            ..options.clone()
        };
        let server = Server::start(Some(&fast.url()), &without_redis).await?;
        let run = through(
            std::slice::from_ref(&server.base),
            clients,
            requests,
            options,
            "alone",
        )
        .await?;
        server.finish("instances (no Redis)").await?;
        run
    };
    let a = Server::start(Some(&fast.url()), options).await?;
    let one = through(
        std::slice::from_ref(&a.base),
        clients,
        requests,
        options,
        "one",
    )
    .await?;
    let b = Server::start(Some(&fast.url()), options).await?;
    let two = through(
        &[a.base.clone(), b.base.clone()],
        clients,
        requests,
        options,
        "two",
    )
    .await?;
    let rss = |server: &Server| rss_kib(server.pid).map_or(0.0, |kib| kib as f64 / 1024.0);

    let row = |label: &str, run: &ChatRun| {
        println!(
            "| {label} | {:.0} | {} | p50 {:.2} ms, p99 {:.2} ms |",
            run.per_second(),
            run.failures,
            ms(run.totals.percentile(50.0)),
            ms(run.totals.percentile(99.0)),
        );
    };
    println!("full streamed chats, {clients} clients, {requests} chats per row:");
    println!();
    println!("| | chats/s | failed | one chat |");
    println!("|---|---|---|---|");
    row("mock model called directly", &mock);
    row("one Refbook instance, no Redis", &alone);
    row("one Refbook instance (Redis on)", &one);
    row("two Refbook instances, one database, one Redis", &two);
    println!();
    println!(
        "RSS after the runs: instance A {:.0} MB, instance B {:.0} MB",
        rss(&a),
        rss(&b)
    );
    b.finish("instances (B)").await.context("instance B")?;
    a.finish("instances (A)").await.context("instance A")
}
