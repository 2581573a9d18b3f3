//! Throwaway databases for tests (feature `testing`).
//!
//! [`TestDatabase::create`] makes a fresh SQLite file in a temporary folder, or a uniquely
//! named PostgreSQL database on the server at `REFBOOK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), and removes it again when dropped — even
//! when the test panics. Without a reachable server the PostgreSQL tests report that they
//! were skipped, on the terminal, unless `REFBOOK_TEST_REQUIRE_POSTGRES=1` (as in CI), in
//! which case they fail.
//!
//! [`backend_tests!`](crate::backend_tests) runs each named `async fn(TestDatabase)` once
//! per backend.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Once;

use crate::domain::{ConversationId, MessageId};
use sqlx::{Connection, Executor, PgConnection};

/// The default PostgreSQL server for tests.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: TestBackend,
    _cleanup: Cleanup,
}

impl TestDatabase {
    /// The URL to give `REFBOOK_DATABASE_URL` / `SqlStore::connect`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend this is.
    pub fn backend(&self) -> TestBackend {
        self.backend
    }

    /// A fresh database, or `None` when PostgreSQL is not reachable and not required.
    pub async fn create(backend: TestBackend) -> Option<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            TestBackend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("refbook-test-{suffix}"));
                Some(Self {
                    url: format!("sqlite://{}", dir.join("refbook.db").display()),
                    backend,
                    _cleanup: Cleanup::Dir(dir),
                })
            }
            TestBackend::Postgres => {
                let admin_url = std::env::var("REFBOOK_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let name = format!("refbook_test_{suffix}");
                match create_postgres_database(&admin_url, &name).await {
                    Ok(url) => Some(Self {
                        url,
                        backend,
                        _cleanup: Cleanup::Postgres { admin_url, name },
                    }),
                    Err(err) => {
                        let required = std::env::var("REFBOOK_TEST_REQUIRE_POSTGRES")
                            .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                        assert!(
                            !required,
                            "PostgreSQL is required (REFBOOK_TEST_REQUIRE_POSTGRES) but {admin_url} failed: {err}"
                        );
                        report_skip(&admin_url, &err.to_string());
                        None
                    }
                }
            }
        }
    }
}

/// Whether fault tests (their own PostgreSQL cluster, a tmpfs) must run rather than be
/// skipped when the machine cannot give them what they need (`REFBOOK_TEST_REQUIRE_FAULTS`).
fn faults_required() -> bool {
    std::env::var("REFBOOK_TEST_REQUIRE_FAULTS")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

pub(crate) fn report_fault_skip(what: &str, err: &str) {
    assert!(
        !faults_required(),
        "fault tests are required (REFBOOK_TEST_REQUIRE_FAULTS) but {what} failed: {err}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED: a fault test — {what} failed ({err}). It needs root with pg_createcluster \
         and mount; CI sets REFBOOK_TEST_REQUIRE_FAULTS=1.\n"
    );
}

fn run_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A free TCP port on loopback (bound and released).
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

impl TestDatabase {
    /// A PostgreSQL server of the test's own — a new cluster on a free port, trust auth —
    /// that the test may stop and start ([`stop_server`](Self::stop_server)) without
    /// disturbing tests beside it; dropped with the database. `None` (reported) when the
    /// machine cannot make one and `REFBOOK_TEST_REQUIRE_FAULTS` is not set.
    pub fn own_postgres_cluster() -> Option<Self> {
        let made = (|| -> Result<Self, String> {
            let version = std::fs::read_dir("/etc/postgresql")
                .map_err(|e| format!("/etc/postgresql: {e}"))?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .max()
                .ok_or("no PostgreSQL version installed")?;
            let name = format!("refbook_{}", uuid::Uuid::new_v4().simple());
            let port = free_port()?.to_string();
            run_tool(
                "pg_createcluster",
                &[&version, &name, "--port", &port, "--", "--auth=trust"],
            )?;
            let db = Self {
                url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                backend: TestBackend::Postgres,
                _cleanup: Cleanup::Cluster {
                    version: version.clone(),
                    name: name.clone(),
                },
            };
            run_tool("pg_ctlcluster", &[&version, &name, "start"])?;
            Ok(db)
        })();
        made.map_err(|err| report_fault_skip("creating a PostgreSQL cluster", &err))
            .ok()
    }

    /// Stops this test's own PostgreSQL server at once (`-m immediate`: like a crash).
    ///
    /// # Panics
    ///
    /// When this database is not an [`own_postgres_cluster`](Self::own_postgres_cluster)
    /// or the server does not stop.
    pub fn stop_server(&self) {
        let Cleanup::Cluster { version, name } = &self._cleanup else {
            panic!("stop_server needs a database made by own_postgres_cluster");
        };
        if let Err(err) = run_tool("pg_ctlcluster", &[version, name, "stop", "-m", "immediate"]) {
            panic!("{err}");
        }
    }

    /// Starts this test's own PostgreSQL server again.
    ///
    /// # Panics
    ///
    /// As [`stop_server`](Self::stop_server).
    pub fn start_server(&self) {
        let Cleanup::Cluster { version, name } = &self._cleanup else {
            panic!("start_server needs a database made by own_postgres_cluster");
        };
        if let Err(err) = run_tool("pg_ctlcluster", &[version, name, "start"]) {
            panic!("{err}");
        }
    }

    /// A SQLite database on a tmpfs of `size_kib` KiB of its own, to fill up; `None`
    /// (reported) when mounting is not possible and `REFBOOK_TEST_REQUIRE_FAULTS` is not
    /// set.
    pub fn sqlite_on_small_disk(size_kib: u32) -> Option<Self> {
        let dir =
            std::env::temp_dir().join(format!("refbook-tmpfs-{}", uuid::Uuid::new_v4().simple()));
        let made = (|| -> Result<(), String> {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let size = format!("size={size_kib}k");
            run_tool(
                "mount",
                &[
                    "-t",
                    "tmpfs",
                    "-o",
                    &size,
                    "tmpfs",
                    &dir.display().to_string(),
                ],
            )
        })();
        match made {
            Ok(()) => Some(Self {
                url: format!("sqlite://{}", dir.join("refbook.db").display()),
                backend: TestBackend::Sqlite,
                _cleanup: Cleanup::Tmpfs(dir),
            }),
            Err(err) => {
                let _ = std::fs::remove_dir_all(&dir);
                report_fault_skip("mounting a tmpfs", &err);
                None
            }
        }
    }

    /// The folder holding this SQLite database's file.
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        match &self._cleanup {
            Cleanup::Dir(dir) | Cleanup::Tmpfs(dir) => Some(dir),
            _ => None,
        }
    }
}

/// Runs `case` on a fresh database of `backend` (or reports the skip).
pub async fn run<F, Fut>(backend: TestBackend, case: F)
where
    F: FnOnce(TestDatabase) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(db) = TestDatabase::create(backend).await {
        case(db).await;
    }
}

/// Defines, for each named `async fn(TestDatabase)`, one test on SQLite (in module
/// `sqlite`) and one on PostgreSQL (in module `postgres`).
#[macro_export]
macro_rules! backend_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::testing::run($crate::testing::TestBackend::Sqlite, super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::testing::run($crate::testing::TestBackend::Postgres, super::$case).await;
                }
            )*
        }
    };
}

/// Defines, for each named `async fn(TestDatabase)` whose behaviour does not depend on the
/// database (routing, headers, content negotiation, the HTTP versions), one test, run on
/// SQLite (in module `any_database`): running it on both backends would test nothing more.
#[macro_export]
macro_rules! database_independent_tests {
    ($($case:ident),* $(,)?) => {
        mod any_database {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::testing::run($crate::testing::TestBackend::Sqlite, super::$case).await;
                }
            )*
        }
    };
}

fn report_skip(url: &str, err: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Written to the real stderr, past the test harness's capture, so it is seen.
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: PostgreSQL tests — no server at {url} ({err}). \
             Set REFBOOK_TEST_POSTGRES_URL to run them; CI sets REFBOOK_TEST_REQUIRE_POSTGRES=1.\n"
        );
    });
}

async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, sqlx::Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    admin.close().await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(server, _db)| server);
    Ok(format!("{base}/{name}"))
}

#[derive(Debug)]
enum Cleanup {
    Dir(PathBuf),
    Postgres {
        admin_url: String,
        name: String,
    },
    /// A PostgreSQL cluster of the test's own (dropped with it).
    Cluster {
        version: String,
        name: String,
    },
    /// A tmpfs mounted for the test (unmounted, then its folder removed).
    Tmpfs(PathBuf),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Self::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Cluster { version, name } => {
                let _ = std::process::Command::new("pg_dropcluster")
                    .args(["--stop", version, name])
                    .output();
            }
            Self::Tmpfs(dir) => {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&*dir)
                    .output();
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop may run inside a runtime: do the async work on a thread of its own.
                let _ = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async {
                        if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                            let _ = admin
                                .execute(
                                    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
                                        .as_str(),
                                )
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub mod book_sources;
mod clock;
pub use clock::ShiftedClock;
mod mock_llm;
mod redis;
pub use self::redis::{OwnRedis, TestRedis, DEFAULT_REDIS_URL};
mod model_hub;
pub use model_hub::{mount_model_hub, unreachable_hub, HUB_BYTES_PATH};
#[cfg(feature = "local-model")]
mod tiny_model;
#[cfg(feature = "local-model")]
pub use tiny_model::write_tiny_model;

pub use mock_llm::{MockLlm, MockReply, Step};

/// A reply being generated (started, nothing more), for benchmarks of what reads replies.
pub fn sample_reply(
    conversation_id: ConversationId,
    message_id: MessageId,
    model: &str,
) -> std::sync::Arc<crate::chat::Reply> {
    let reply = crate::chat::Reply::new(conversation_id, message_id, model.to_owned());
    reply.push(crate::chat::ReplyEvent::Start);
    reply
}

/// The GGUF file the local model's tests run on (`REFBOOK_TEST_GGUF`), or `None` after
/// printing a skip.
///
/// # Panics
///
/// When `REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1` and no file is named: CI must not skip them.
pub fn local_model_file() -> Option<PathBuf> {
    match std::env::var("REFBOOK_TEST_GGUF") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            assert!(
                std::env::var("REFBOOK_TEST_REQUIRE_LOCAL_MODEL").as_deref() != Ok("1"),
                "REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1 but REFBOOK_TEST_GGUF is not set"
            );
            eprintln!("SKIPPED: local model tests (set REFBOOK_TEST_GGUF to a SmolLM2 GGUF)");
            None
        }
    }
}
