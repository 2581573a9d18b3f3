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
    Postgres { admin_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Self::Dir(dir) => {
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

mod mock_llm;

pub use mock_llm::{MockLlm, MockReply, Step};
