//! [`SqlStore`]: the store on SQLite or PostgreSQL through sqlx's `Any` driver.
//!
//! Queries are written once in the SQL both dialects share (`$1` placeholders work in
//! SQLite too); only the migrations differ per dialect.

mod api_keys;
mod batch;
mod book_text_work;
mod book_texts;
mod books;
mod claims;
mod collections;
mod conversations;
mod final_saves;
mod guides;
mod personas;
mod reading;
mod replies;
mod responses;
mod sessions;
mod settings;
mod tx;
mod users;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use super::{Store, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (WAL, foreign keys on).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, by its scheme.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for a URL that is neither `sqlite:` nor `postgres:`/`postgresql:`.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// The store on a SQL database; cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: the queue of this process's write transactions.
    write_queue: Option<writer::WriteQueue>,
    /// SQLite: the thread that runs the hot write transactions (absent on the handle
    /// that thread itself uses).
    writer: Option<std::sync::Arc<writer::Writer>>,
}

impl SqlStore {
    /// Connects to `url` (`sqlite://path` — the file and its folder are created if missing —
    /// or `postgres://…`) and applies the embedded migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the URL names no supported database, the database cannot be
    /// reached or created, or a migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // An in-memory SQLite database lives and dies with its one connection: keep
        // exactly one, for ever.
        let in_memory = backend == Backend::Sqlite && url.contains(":memory:");
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite if in_memory => 1,
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .min_connections(u32::from(in_memory))
            .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
            .max_lifetime((!in_memory).then_some(Duration::from_secs(1800)))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout makes
                        // concurrent writers wait for each other instead of failing.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        let mut store = Self {
            pool,
            backend,
            write_queue: (backend == Backend::Sqlite).then(Default::default),
            writer: None,
        };
        if backend == Backend::Sqlite {
            store.writer = Some(std::sync::Arc::new(writer::Writer::start(store.clone())?));
        }
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for embedders that add their own tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// `$a, $b, …`: `count` parameter placeholders numbered after the first `used`.
pub(super) fn placeholders(used: usize, count: usize) -> String {
    (used + 1..=used + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds `mode=rwc` (create if missing) to a SQLite URL and creates the file's folder.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or(StoreError::UnsupportedUrl)?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl);
    }
    if path != ":memory:" {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Database(e.into()))?;
        }
    }
    Ok(if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    })
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // A real write, not `SELECT 1`: a full disk or a read-only server answers reads.
        let now = crate::timestamp::Timestamp::now().millis().to_string();
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('readyz', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_gain_create_mode() {
        assert_eq!(
            prepare_sqlite_url("sqlite://refbook.db").unwrap(),
            "sqlite://refbook.db?mode=rwc"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite:x.db?cache=shared").unwrap(),
            "sqlite:x.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite://x.db?mode=ro").unwrap(),
            "sqlite://x.db?mode=ro"
        );
        assert!(Backend::of_url("mysql://x").is_err());
    }
}
