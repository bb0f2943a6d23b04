//! `[library]`: cache lifetime, lock leases and the per-user quota.

use std::time::Duration;

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Validate};
use serde::{Deserialize, Serialize};

/// `[library]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LibraryConfig {
    /// How long a cached library page or item lives (writes invalidate it at once anyway).
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// The lease of an edit lock from `POST /library/{id}/lock` (and of each extend).
    #[serde(with = "humantime_serde")]
    pub lock_ttl: Duration,
    /// The lease of the short lock a PATCH or DELETE without `X-Lock-Token` takes by itself.
    #[serde(with = "humantime_serde")]
    pub write_lock_ttl: Duration,
    /// The most items one user's library may hold (a create or import beyond it answers 409
    /// `QUOTA_EXCEEDED`).
    pub max_items_per_user: u64,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(30 * 60),
            lock_ttl: Duration::from_secs(60),
            write_lock_ttl: Duration::from_secs(10),
            max_items_per_user: 10_000,
        }
    }
}

impl ConfigSection for LibraryConfig {
    const KEY: &'static str = "library";

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new(
                "library.cache_ttl",
                "how long a cached library page or item lives (writes invalidate them at once)",
            ),
            Row::new("library.lock_ttl", "lease of an edit lock from `POST /library/{id}/lock` and of each extend"),
            Row::new(
                "library.write_lock_ttl",
                "lease of the short lock a PATCH or DELETE without `X-Lock-Token` takes by itself",
            ),
            Row::new(
                "library.max_items_per_user",
                "the most items one user's library may hold; a create or import beyond it answers 409 `QUOTA_EXCEEDED`",
            ),
        ]
    }
}

impl Validate for LibraryConfig {
    fn validate(&self, _profile: Profile) -> Result<(), ConfigIssue> {
        let at_least_a_second = |key: &str, d: Duration| {
            if d < Duration::from_secs(1) { Err(ConfigIssue::new(key, "must be at least 1s")) } else { Ok(()) }
        };
        at_least_a_second("library.cache_ttl", self.cache_ttl)?;
        at_least_a_second("library.lock_ttl", self.lock_ttl)?;
        at_least_a_second("library.write_lock_ttl", self.write_lock_ttl)?;
        if self.max_items_per_user == 0 || self.max_items_per_user > 10_000_000 {
            return Err(ConfigIssue::new("library.max_items_per_user", "must be 1 to 10,000,000"));
        }
        if self.lock_ttl > Duration::from_secs(3600) {
            return Err(ConfigIssue::new("library.lock_ttl", "must be at most 1h (clients extend long edits)"));
        }
        Ok(())
    }
}
