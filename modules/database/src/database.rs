//! The sqlx pool over both databases, and the migrations.
//!
//! One code path for SQLite and PostgreSQL: sqlx's `Any` driver picks the backend from the URL;
//! SQL uses `$N` placeholders (both accept them), and the schema keeps to the types `Any`
//! decodes on both (TEXT ids, BIGINT epoch-millisecond timestamps, INTEGER booleans), so one
//! migration usually serves both; one that cannot carries PostgreSQL's own SQL.

use std::time::{Duration, Instant};

use app_core::Migration;
use sqlx::{
    AnyPool, Executor, SqlSafeStr,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::{Migration as SqlxMigration, MigrationType, Migrator},
};

use crate::{DatabaseConfig, DbError};

/// Which database the URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a URL names, if supported.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool to the configured database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl Database {
    /// Opens the pool (creating the SQLite file and its directory on first run) and checks that
    /// the database answers.
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Database, DbError> {
        install_default_drivers();
        let backend = Backend::from_url(&cfg.url)
            .ok_or_else(|| DbError::Unavailable("unsupported database URL scheme".into()))?;
        if backend == Backend::Sqlite {
            create_sqlite_dir(&cfg.url)?;
        }
        // An in-memory SQLite database exists per connection: the pool must hold exactly one,
        // forever, or other connections would see an empty database without the migrations.
        let in_memory = backend == Backend::Sqlite && (cfg.url.contains(":memory:") || cfg.url.contains("mode=memory"));
        let (max, min) = if in_memory { (1, 1) } else { (cfg.max_connections, cfg.min_connections) };
        let mut options =
            AnyPoolOptions::new().max_connections(max).min_connections(min).acquire_timeout(cfg.acquire_timeout);
        if in_memory {
            options = options.idle_timeout(None).max_lifetime(None);
        }
        // An embedded SQLite connection cannot go stale, and pinging it before every acquire
        // costs a hand-off to its worker thread per query (measured by `scripts/bench.sh`). A
        // PostgreSQL connection can die with the server, so it is still tested.
        if backend == Backend::Sqlite {
            options = options.test_before_acquire(false);
        }
        let pool = options
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; busy_timeout makes a writer wait
                        // for the lock instead of failing with SQLITE_BUSY.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&cfg.url)
            .await
            .map_err(|e| DbError::Unavailable(describe_connect_error(&e)))?;
        Ok(Database { pool, backend })
    }

    /// Applies the pending ones of `migrations` (every module's, in version order), with this
    /// backend's SQL. A migration already applied must be unchanged (its checksum is kept).
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<(), DbError> {
        let migrations = migrations
            .iter()
            .map(|m| {
                let sql = match self.backend {
                    Backend::Postgres => m.postgres.unwrap_or(m.sql),
                    Backend::Sqlite => m.sql,
                };
                // As `sqlx::migrate!` describes a file `<version>_<words>.sql`.
                let description = m.description.replace('_', " ");
                SqlxMigration::new(m.version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect();
        Migrator::with_migrations(migrations).run(&self.pool).await.map_err(|e| DbError::Migration(e.to_string()))
    }

    /// The pool, for repositories.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `SELECT 1`; returns the round-trip time.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let started = Instant::now();
        self.pool.execute("SELECT 1").await?;
        Ok(started.elapsed())
    }

    /// Closes the pool, waiting (at most 5 s) for checked-out connections to come back, so a
    /// stuck query cannot hold shutdown past the orchestrator's patience.
    pub async fn close(&self) {
        if tokio::time::timeout(Duration::from_secs(5), self.pool.close()).await.is_err() {
            tracing::warn!("database connections did not come back within 5 s; closing anyway");
        }
    }
}

/// Creates the directory of a SQLite file URL (`sqlite://data/app.db?mode=rwc` -> `data/`).
fn create_sqlite_dir(url: &str) -> Result<(), DbError> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbError::Unavailable(format!("cannot create the SQLite directory {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// A connect error in words for the start-up line, without the URL (it may carry a password).
fn describe_connect_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => format!("cannot reach the database server ({io})"),
        sqlx::Error::PoolTimedOut => "timed out connecting to the database".into(),
        sqlx::Error::Database(db) => {
            format!("the database refused the connection: {}", db.message())
        }
        other => other.to_string(),
    }
}
