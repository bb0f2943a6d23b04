//! `[users]`: how long profiles stay cached.

use std::time::Duration;

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Validate};
use serde::{Deserialize, Serialize};

/// `[users]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// How long a cached profile lives (every change invalidates it at once anyway).
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self { cache_ttl: Duration::from_secs(3600) }
    }
}

impl ConfigSection for UsersConfig {
    const KEY: &'static str = "users";

    fn rows(&self) -> Vec<Row> {
        vec![Row::new("users.cache_ttl", "how long a cached profile lives (changes invalidate it at once)")]
    }
}

impl Validate for UsersConfig {
    fn validate(&self, _profile: Profile) -> Result<(), ConfigIssue> {
        if self.cache_ttl < Duration::from_secs(1) {
            return Err(ConfigIssue::new("users.cache_ttl", "must be at least 1s"));
        }
        Ok(())
    }
}
