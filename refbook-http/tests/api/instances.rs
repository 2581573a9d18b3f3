//! Many instances on one PostgreSQL database and one Redis behave as one server: a reply
//! generating on A is followed live on B (stream and polling, the same positions), stop
//! and regenerate on B reach A, rate limits and revocations are shared, and Redis
//! restarted mid-reply loses nothing. Each test has a Redis key prefix of its own (or a
//! Redis server of its own, for the restart).

use std::time::{Duration, Instant};

use refbook_core::config::Secret;
use refbook_core::testing::{MockReply, OwnRedis, TestDatabase, TestRedis};
use refbook_http::RunningServer;
use refbook_http::ServerConfig;
use reqwest::Method;
use serde_json::json;

use crate::api_keys::{create_key, key_of};
use crate::chat::{messages, slow_answer, wait_until_generating, wait_until_settled};
use crate::helpers::{last_chunk, parse_sse, spawn_app_with, texts, Sse, TestApp, SANTI};

/// A on a fresh database with Redis at `url` under `prefix` (and `tweak`), and B, a
/// second instance of the same configuration.
async fn two_instances(
    db: TestDatabase,
    url: &str,
    prefix: &str,
    tweak: impl FnOnce(&mut ServerConfig),
) -> (TestApp, RunningServer) {
    let app = spawn_app_with(db, |c| {
        c.core.cluster.url = Some(Secret::new(url));
        c.core.cluster.prefix = prefix.to_owned();
        tweak(c);
    })
    .await;
    let b = app.sibling().await;
    (app, b)
}

fn ids(events: &[Sse]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Sse::Event(at, _) => Some(*at),
            _ => None,
        })
        .collect()
}

/// The events after position `after`.
fn after(events: &[Sse], after: u64) -> Vec<Sse> {
    events
        .iter()
        .filter(|e| !matches!(e, Sse::Event(at, _) if *at <= after))
        .cloned()
        .collect()
}

async fn stream_from(app: &TestApp, base: &str, token: &str, id: i64, position: u64) -> Vec<Sse> {
    let resumed = app
        .send(
            app.client
                .get(format!("{base}/api/conversations/{id}/stream/"))
                .bearer_auth(token)
                .header("last-event-id", position.to_string()),
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    parse_sse(&resumed.text)
}

async fn a_reply_on_a_is_followed_live_on_b(db: TestDatabase, redis: TestRedis) {
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |_| {}).await;
    let (t, id) = app.user_with_conversation("live").await;
    let (script, full) = slow_answer(40);
    app.llm.push(script);
    let on_a = app.spawn_ask(&t, id, "问");
    wait_until_generating(&app, &t, id, 3).await;

    // Polling on B mid-reply shows what A has produced, not only A's last checkpoint.
    let polled = app
        .call_at(
            &b.url(),
            Method::GET,
            &format!("/api/conversations/{id}/reply/?cursor=0"),
            Some(&t),
            None,
        )
        .await;
    let polled = polled.assert_ok().clone();
    assert_eq!(polled["status"], "generating");
    let seen = polled["delta"].as_str().unwrap();
    assert!(!seen.is_empty() && full.starts_with(seen), "{seen:?}");
    let cursor = polled["cursor"].as_u64().unwrap();

    // Resuming on B from there follows A to the end.
    let on_b = stream_from(&app, &b.url(), &t, id, cursor).await;
    let on_a = parse_sse(&on_a.await.unwrap());
    let a_rest = after(&on_a, cursor);
    assert_eq!(
        texts(&on_b),
        texts(&a_rest),
        "nothing missed, nothing twice"
    );
    assert_eq!(texts(&on_a).0, full);
    assert_eq!(last_chunk(&on_b), last_chunk(&on_a));
    // Live, event by event, at A's own positions — not the database's checkpoints (one
    // every 2 s, which would merge many of A's events into one).
    let b_ids = ids(&on_b);
    let a_ids: Vec<u64> = ids(&on_a).into_iter().filter(|at| *at > b_ids[0]).collect();
    assert_eq!(&b_ids[1..], a_ids.as_slice());
    assert!(b_ids.len() > 20, "{b_ids:?}");

    // Polling on B after the end gives the stored ending at the same last position.
    let done = app
        .call_at(
            &b.url(),
            Method::GET,
            &format!("/api/conversations/{id}/reply/?cursor={cursor}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(done.body["status"], "complete");
    assert_eq!(done.body["cursor"], *ids(&on_a).last().unwrap());
    b.stop().await.unwrap();
}

async fn stop_on_b_stops_the_reply_on_a(db: TestDatabase, redis: TestRedis) {
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |_| {}).await;
    let (t, id) = app.user_with_conversation("stopper").await;
    let (script, full) = slow_answer(200);
    app.llm.push(script);
    let on_a = app.spawn_ask(&t, id, "问");
    wait_until_generating(&app, &t, id, 3).await;
    let asked = Instant::now();
    let stopped = app
        .call_at(
            &b.url(),
            Method::POST,
            &format!("/api/conversations/{id}/stop/"),
            Some(&t),
            None,
        )
        .await;
    let took = asked.elapsed();
    let stopped = stopped.assert_ok().clone();
    assert_eq!(stopped["status"], "partial");
    assert_eq!(stopped["finish_reason"], "cancelled");
    assert!(
        took < Duration::from_secs(2),
        "the owner stopped in {took:?}"
    );
    // A's stream ends as a local stop would end it, with what was stored.
    let on_a = parse_sse(&on_a.await.unwrap());
    let last = last_chunk(&on_a);
    assert_eq!(last["choices"][0]["finish_reason"], "cancelled");
    assert_eq!(last["status"], "partial");
    let kept = texts(&on_a).0;
    assert!(kept.len() < full.len());
    assert_eq!(stopped["content"], kept.as_str());
    // Nothing generates any more: stop again is 404 on both.
    for base in [app.server.url(), b.url()] {
        app.call_at(
            &base,
            Method::POST,
            &format!("/api/conversations/{id}/stop/"),
            Some(&t),
            None,
        )
        .await
        .assert_error(404, "NOT_FOUND");
    }
    b.stop().await.unwrap();
}

async fn regenerate_and_delete_on_b_are_seen_on_a(db: TestDatabase, redis: TestRedis) {
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |_| {}).await;
    let (t, id) = app.user_with_conversation("regen").await;
    app.llm
        .push(MockReply::answer(&[], &["第一个回答"], Duration::ZERO));
    let first = parse_sse(&app.ask_streaming(&t, id, "问").await.text);
    assert_eq!(texts(&first).0, "第一个回答");
    // A keeps its finished reply in memory; B regenerates it.
    let (script, full) = slow_answer(30);
    app.llm.push(script);
    let regenerated = app.send(
        app.client
            .post(format!("{}/api/conversations/{id}/regenerate/", b.url()))
            .bearer_auth(&t)
            .header("accept", "text/event-stream")
            .json(&json!({})),
    );
    let ((), on_b) = tokio::join!(
        async {
            wait_until_generating(&app, &t, id, 1).await;
            // Streaming on A now follows B's new reply, not A's old one.
            let on_a = stream_from(&app, &app.server.url(), &t, id, 0).await;
            assert_eq!(texts(&on_a).0, full);
        },
        regenerated
    );
    assert_eq!(texts(&parse_sse(&on_b.text)).0, full);
    let stored = wait_until_settled(&app, &t, id).await;
    assert_eq!(stored.len(), 2, "the old reply was replaced");
    assert_eq!(stored[1]["content"], full.as_str());

    // Deleting on B while A generates stops A's reply.
    let (script, _) = slow_answer(200);
    app.llm.push(script);
    let on_a = app.spawn_ask(&t, id, "再问");
    wait_until_generating(&app, &t, id, 1).await;
    app.call_at(
        &b.url(),
        Method::DELETE,
        &format!("/api/conversations/{id}/"),
        Some(&t),
        None,
    )
    .await
    .assert_ok();
    let on_a = tokio::time::timeout(Duration::from_secs(5), on_a)
        .await
        .expect("A stopped its reply")
        .unwrap();
    let on_a = parse_sse(&on_a);
    assert_eq!(
        last_chunk(&on_a)["choices"][0]["finish_reason"],
        "cancelled"
    );
    app.get(&format!("/api/conversations/{id}/"), Some(&t))
        .await
        .assert_error(404, "NOT_FOUND");
    b.stop().await.unwrap();
}

async fn rate_limits_are_shared(db: TestDatabase, redis: TestRedis) {
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |c| {
        c.http.chat_rate_per_min = 4;
    })
    .await;
    let (t, id) = app.user_with_conversation("limited").await;
    let bases = [app.server.url(), b.url()];
    for turn in 0..4 {
        app.llm
            .push(MockReply::answer(&[], &["答"], Duration::ZERO));
        let base = &bases[turn % 2];
        app.call_at(
            base,
            Method::POST,
            &format!("/api/conversations/{id}/messages/"),
            Some(&t),
            Some(json!({"content": format!("问{turn}")})),
        )
        .await
        .assert_ok();
    }
    // Four went through, on A and B together: the fifth is refused on either.
    for base in &bases {
        let refused = app
            .call_at(
                base,
                Method::POST,
                &format!("/api/conversations/{id}/messages/"),
                Some(&t),
                Some(json!({"content": "再问"})),
            )
            .await;
        refused.assert_error(429, "RATE_LIMIT");
        let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=15).contains(&wait), "{wait}");
    }
    b.stop().await.unwrap();
}

async fn the_lock_and_the_cap_hold_across_instances(db: TestDatabase, redis: TestRedis) {
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |c| {
        c.core.chat.max_concurrent_generations = 1;
    })
    .await;
    let (t, id) = app.user_with_conversation("locked").await;
    let (script, _) = slow_answer(40);
    app.llm.push(script);
    let on_a = app.spawn_ask(&t, id, "问");
    wait_until_generating(&app, &t, id, 1).await;
    // The same conversation on B: locked.
    app.call_at(
        &b.url(),
        Method::POST,
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        Some(json!({"content": "同时问"})),
    )
    .await
    .assert_error(409, "CONFLICT");
    // Another conversation on B: over the user's cap of one.
    let other = app
        .post("/api/conversations/", Some(&t), json!({"isbn": SANTI}))
        .await;
    let other = other.assert_ok()["id"].as_i64().unwrap();
    app.call_at(
        &b.url(),
        Method::POST,
        &format!("/api/conversations/{other}/messages/"),
        Some(&t),
        Some(json!({"content": "另一个"})),
    )
    .await
    .assert_error(429, "RATE_LIMIT");
    on_a.await.unwrap();
    b.stop().await.unwrap();
}

async fn completions_share_the_per_user_cap_across_instances(db: TestDatabase, redis: TestRedis) {
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |c| {
        c.core.chat.max_concurrent_generations = 1;
    })
    .await;
    let (t, _) = app.user_with_conversation("completer").await;
    let key = key_of(&create_key(&app, &t, "sdk").await).to_owned();
    let complete = |base: String, stream: bool| {
        app.client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": SANTI, "stream": stream, "messages": [{"role": "user", "content": "问"}]}))
    };
    let (script, _) = slow_answer(40);
    app.llm.push(script);
    let running = complete(app.server.url(), true).send().await.unwrap();
    assert_eq!(running.status(), 200);
    let mut body = running.bytes_stream();
    futures::StreamExt::next(&mut body).await.unwrap().unwrap();
    // The user's one place is taken on A: B refuses a second completion.
    let refused = app.send(complete(b.url(), false)).await;
    assert_eq!(refused.status.as_u16(), 429, "{}", refused.text);
    while futures::StreamExt::next(&mut body).await.is_some() {}
    // Given back when A's completion ended: B answers.
    app.llm
        .push(MockReply::answer(&[], &["答"], Duration::ZERO));
    let asked = Instant::now();
    loop {
        let answered = app.send(complete(b.url(), false)).await;
        if answered.status == 200 {
            break;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{}",
            answered.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await.unwrap();
}

async fn logout_all_on_a_is_refused_on_b_at_once(db: TestDatabase, redis: TestRedis) {
    // Credentials are cached for a minute: without the notice B would accept the token
    // for that long.
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |c| {
        c.core.accounts.auth_cache_secs = 60;
    })
    .await;
    let login = app.register("revoked").await;
    let t = crate::helpers::token(&login).to_owned();
    let me = |base: String| {
        let request = app
            .client
            .get(format!("{base}/api/auth/me/"))
            .bearer_auth(&t);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(me(b.url()).await, 200, "B has the session cached");
    app.post("/api/auth/logout/", Some(&t), json!({"all": true}))
        .await
        .assert_ok();
    let asked = Instant::now();
    while me(b.url()).await != 401 {
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "B still accepts a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(me(app.server.url()).await, 401);
    b.stop().await.unwrap();
}

async fn redis_restarted_mid_reply_loses_nothing(db: TestDatabase, mut redis: OwnRedis) {
    let (app, b) = two_instances(db, &redis.url(), "refbook:", |_| {}).await;
    let (t, id) = app.user_with_conversation("restart").await;
    let (script, full) = slow_answer(80);
    app.llm.push(script);
    let on_a = app.spawn_ask(&t, id, "问");
    wait_until_generating(&app, &t, id, 2).await;
    // B follows from the start while Redis dies and comes back, empty.
    let b_url = b.url();
    let client = app.client.clone();
    let token = t.clone();
    let on_b = tokio::spawn(async move {
        client
            .get(format!("{b_url}/api/conversations/{id}/stream/"))
            .bearer_auth(&token)
            .header("last-event-id", "0")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart();
    let on_a = parse_sse(&on_a.await.unwrap());
    let on_b = parse_sse(&on_b.await.unwrap());
    assert_eq!(texts(&on_a).0, full, "the owner kept generating");
    assert_eq!(texts(&on_b), texts(&on_a), "the follower missed nothing");
    let b_ids = ids(&on_b);
    assert!(b_ids.windows(2).all(|w| w[0] < w[1]), "{b_ids:?}");
    assert_eq!(last_chunk(&on_b), last_chunk(&on_a));
    let stored = messages(&app, &t, id).await;
    assert_eq!(stored[1]["content"], full.as_str());
    assert_eq!(stored[1]["status"], "complete");

    // After the restart replies are live across instances again.
    let (script, full) = slow_answer(30);
    app.llm.push(script);
    let on_a = app.spawn_ask(&t, id, "再问");
    wait_until_generating(&app, &t, id, 2).await;
    let on_b = stream_from(&app, &b.url(), &t, id, 0).await;
    assert_eq!(texts(&on_b).0, full);
    let _ = on_a.await;
    assert!(ids(&on_b).len() > 15, "live again: {:?}", ids(&on_b));
    b.stop().await.unwrap();
}

mod postgres {
    use refbook_core::testing::{OwnRedis, TestBackend, TestDatabase, TestRedis};

    macro_rules! instance_tests {
        ($($case:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(redis) = TestRedis::create() else { return };
                let Some(db) = TestDatabase::create(TestBackend::Postgres).await else { return };
                super::$case(db, redis).await;
            }
        )*};
    }

    instance_tests!(
        a_reply_on_a_is_followed_live_on_b,
        stop_on_b_stops_the_reply_on_a,
        regenerate_and_delete_on_b_are_seen_on_a,
        rate_limits_are_shared,
        the_lock_and_the_cap_hold_across_instances,
        logout_all_on_a_is_refused_on_b_at_once,
        completions_share_the_per_user_cap_across_instances,
        the_nginx_recipe_streams_replies_from_either_instance,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_restarted_mid_reply_loses_nothing() {
        let Some(redis) = OwnRedis::start() else {
            return;
        };
        let Some(db) = TestDatabase::create(TestBackend::Postgres).await else {
            return;
        };
        super::redis_restarted_mid_reply_loses_nothing(db, redis).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_serve_while_redis_is_down_and_share_again_when_it_returns() {
        let Some(redis) = OwnRedis::start() else {
            return;
        };
        let Some(db) = TestDatabase::create(TestBackend::Postgres).await else {
            return;
        };
        super::instances_serve_while_redis_is_down_and_share_again_when_it_returns(db, redis).await;
    }
}

async fn instances_serve_while_redis_is_down_and_share_again_when_it_returns(
    db: TestDatabase,
    mut redis: OwnRedis,
) {
    redis.kill();
    let (app, b) = two_instances(db, &redis.url(), "refbook:", |c| {
        c.http.chat_rate_per_min = 3;
    })
    .await;
    let (t, id) = app.user_with_conversation("degraded").await;
    // A answers; B follows A's reply through the database and ends exactly as A.
    let (script, full) = slow_answer(30);
    app.llm.push(script);
    let on_a = app.spawn_ask(&t, id, "问");
    wait_until_generating(&app, &t, id, 1).await;
    let on_b = stream_from(&app, &b.url(), &t, id, 0).await;
    let on_a = parse_sse(&on_a.await.unwrap());
    assert_eq!(texts(&on_b), texts(&on_a));
    assert_eq!(texts(&on_b).0, full);
    assert_eq!(last_chunk(&on_b), last_chunk(&on_a));
    // Rate limits are counted by each instance alone meanwhile: B still has its own 3.
    for turn in 0..2 {
        app.llm
            .push(MockReply::answer(&[], &["答"], Duration::ZERO));
        app.post(
            &format!("/api/conversations/{id}/messages/"),
            Some(&t),
            json!({"content": format!("A{turn}")}),
        )
        .await
        .assert_ok();
    }
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"content": "A again"}),
    )
    .await
    .assert_error(429, "RATE_LIMIT");
    app.llm
        .push(MockReply::answer(&[], &["答"], Duration::ZERO));
    app.call_at(
        &b.url(),
        Method::POST,
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        Some(json!({"content": "B"})),
    )
    .await
    .assert_ok();

    // Redis comes back: the instances reconnect by themselves and follow live again.
    // Until A counts in Redis again (its reconnection, then 2 s after its last failed
    // call) its own allowance, spent above, refuses the asks: those are asked again.
    redis.restart();
    let (t2, id2) = app.user_with_conversation("recovered").await;
    let (script, full) = slow_answer(30);
    app.llm.set_fallback(script);
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never live again"
        );
        let asked = app.ask_request(&t2, id2, "问").send().await.unwrap();
        if asked.status() == 429 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let on_a = tokio::spawn(async move { asked.text().await.unwrap() });
        wait_until_generating(&app, &t2, id2, 2).await;
        let on_b = stream_from(&app, &b.url(), &t2, id2, 0).await;
        let _ = on_a.await;
        assert_eq!(texts(&on_b).0, full);
        if ids(&on_b).len() > 15 {
            break; // event by event: live through Redis
        }
    }
    b.stop().await.unwrap();
}

/// nginx as `deploy/nginx.conf` sets it up, in front of A and B, run from a folder of the
/// test's own.
struct Nginx {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// `None` (reported) when nginx is not installed and `REFBOOK_TEST_REQUIRE_NGINX` is
    /// not `1`.
    fn start(a: &str, b: &str) -> Option<Self> {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists());
        let Some(nginx) = nginx else {
            assert!(
                std::env::var("REFBOOK_TEST_REQUIRE_NGINX").as_deref() != Ok("1"),
                "nginx is required (REFBOOK_TEST_REQUIRE_NGINX=1) but not installed"
            );
            eprintln!("\nSKIPPED: the nginx recipe test — nginx is not installed.\n");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let recipe = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf"),
        )
        .unwrap();
        let host = |url: &str| url.trim_start_matches("http://").to_owned();
        let site = recipe
            .replace("refbook-a:8080", &host(a))
            .replace("refbook-b:8080", &host(b))
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
        assert_ne!(site, recipe, "the recipe names its upstreams and port");
        let path = dir.path();
        std::fs::write(path.join("site.conf"), site).unwrap();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  \
             proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  \
             uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  \
             include {p}/site.conf;\n}}\n",
            p = path.display()
        );
        std::fs::write(path.join("nginx.conf"), main).unwrap();
        let child = std::process::Command::new(nginx)
            .arg("-c")
            .arg(path.join("nginx.conf"))
            .arg("-e")
            .arg(path.join("error.log"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(path.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would leave them behind).
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn the_nginx_recipe_streams_replies_from_either_instance(db: TestDatabase, redis: TestRedis) {
    let (app, b) = two_instances(db, redis.url(), redis.prefix(), |c| {
        c.http.trust_proxy_headers = true;
    })
    .await;
    let Some(nginx) = Nginx::start(&app.server.url(), &b.url()) else {
        return;
    };
    let front = nginx.url.clone();
    let (t, id) = app.user_with_conversation("proxied").await;
    let (script, full) = slow_answer(60);
    app.llm.push(script);
    let response = app
        .client
        .post(format!("{front}/api/conversations/{id}/messages/"))
        .bearer_auth(&t)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "问"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Events pass through as they come: the first text arrives while the reply is still
    // generating, as every poll through nginx (landing on A and B in turn) shows.
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("第0段") {
        let chunk = futures::StreamExt::next(&mut body).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    for _ in 0..4 {
        let polled = app
            .call_at(
                &front,
                Method::GET,
                &format!("/api/conversations/{id}/reply/?cursor=0"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(polled.assert_ok()["status"], "generating");
    }
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events = parse_sse(&text);
    assert_eq!(texts(&events).0, full);
    assert_eq!(last_chunk(&events)["status"], "complete");
    drop(nginx);
    b.stop().await.unwrap();
}
