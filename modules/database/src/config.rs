//! `[database]`: the SQL source of truth.

use std::time::Duration;

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Validate, redact_url};
use serde::{Deserialize, Serialize};

/// The embedded default: a SQLite file under `./data/`, created on first run.
pub const DEFAULT_URL: &str = "sqlite://data/app.db?mode=rwc";

/// `[database]` configuration.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db?mode=rwc` or `postgres://user:pass@host:5432/db`.
    /// Env: `DATABASE_URL` or `APP_DATABASE__URL`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection before failing (then: 503).
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Run pending migrations at start-up (`app migrate` runs them on demand).
    pub migrate_on_start: bool,
}

/// Prints every field, with the URL's password redacted.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.into(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            migrate_on_start: true,
        }
    }
}

impl ConfigSection for DatabaseConfig {
    const KEY: &'static str = "database";
    const ALIASES: &'static [(&'static str, &'static str)] = &[("DATABASE_URL", "database.url")];

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new("database.url", "`sqlite://...` or `postgres://user:pass@host:5432/db`"),
            Row::new("database.max_connections", "pool size"),
            Row::new("database.min_connections", "idle connections kept open"),
            Row::new("database.acquire_timeout", "wait for a pooled connection (and for the first connect)"),
            Row::new(
                "database.migrate_on_start",
                "apply pending migrations at start-up (`app migrate` does it on demand)",
            ),
        ]
    }
}

impl Validate for DatabaseConfig {
    fn validate(&self, _: Profile) -> Result<(), ConfigIssue> {
        if crate::Backend::from_url(&self.url).is_none() {
            return Err(ConfigIssue::new(
                "database.url",
                "must start with sqlite: or postgres:// (postgresql:// works too)",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigIssue::new("database.max_connections", "must be at least 1"));
        }
        if self.min_connections > self.max_connections {
            return Err(ConfigIssue::new("database.min_connections", "must not exceed database.max_connections"));
        }
        if self.acquire_timeout.is_zero() {
            return Err(ConfigIssue::new("database.acquire_timeout", "must be longer than 0s"));
        }
        Ok(())
    }
}
