//! Redis for tests: a key prefix of the test's own on the shared test server, or a
//! server of the test's own that it may stop and start.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The default Redis server for tests.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A Redis key prefix that exists for one test on the server at `REFBOOK_TEST_REDIS_URL`
/// (default [`DEFAULT_REDIS_URL`]); its keys are deleted when it is dropped.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    /// A fresh prefix, or `None` (reported on the terminal) when no Redis answers and
    /// `REFBOOK_TEST_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    ///
    /// When Redis is required and does not answer.
    pub fn create() -> Option<Self> {
        let url =
            std::env::var("REFBOOK_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into());
        if let Err(err) = ping(&url) {
            assert!(
                std::env::var("REFBOOK_TEST_REQUIRE_REDIS").as_deref() != Ok("1"),
                "Redis is required (REFBOOK_TEST_REQUIRE_REDIS=1) but {url} does not answer: {err}"
            );
            report_skip(&url, &err);
            return None;
        }
        Some(Self {
            url,
            prefix: format!("refbook-test-{}:", uuid::Uuid::new_v4().simple()),
        })
    }

    /// The server's URL (for `REFBOOK_REDIS_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The test's key prefix (for `REFBOOK_REDIS_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut connection)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn report_skip(url: &str, err: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: Redis tests (many instances) — no Redis at {url} ({err}). Set \
             REFBOOK_TEST_REDIS_URL to run them; CI sets REFBOOK_TEST_REQUIRE_REDIS=1.\n"
        );
    });
}

/// A `redis-server` of the test's own on a free port, keeping nothing on disk, that the
/// test may stop and start again on the same port; stopped when dropped.
#[derive(Debug)]
pub struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts one; `None` (reported) when `redis-server` cannot run here and
    /// `REFBOOK_TEST_REQUIRE_FAULTS` is not set.
    pub fn start() -> Option<Self> {
        let made = (|| -> Result<Self, String> {
            let mut redis = Self {
                port: super::free_port()?,
                child: None,
            };
            redis.start_server()?;
            Ok(redis)
        })();
        made.map_err(|err| super::report_fault_skip("starting redis-server", &err))
            .ok()
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (like a crash; it keeps nothing).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on its port, empty.
    ///
    /// # Panics
    ///
    /// When it does not start.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(err) = self.start_server() {
            panic!("{err}");
        }
    }

    fn start_server(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(err) = ping(&self.url()) {
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {} never answered: {err}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
