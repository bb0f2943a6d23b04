//! `[cache]`: whether reads go through the cache, where it lives, and how a cold key is filled.

use std::time::Duration;

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Validate, redact_url};
use serde::{Deserialize, Serialize};

/// `[cache]` configuration.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Whether reads go through the cache at all. Off: every read goes to the database (for
    /// benchmarks and emergencies); writes still invalidate, so turning it back on is safe.
    pub enabled: bool,
    /// A separate Redis for the cache (run it with `allkeys-lru`), so cached data can be evicted
    /// without touching sessions, locks or jobs. None: the shared-state Redis (`redis.url`).
    /// Same URL forms as `redis.url`; the other `[redis]` settings apply to it too.
    pub redis_url: Option<String>,
    /// Up to this share (percent) is added at random to each entry's TTL, so entries written
    /// together do not expire together.
    pub ttl_jitter_percent: u8,
    /// How long the instance filling a cold key holds its fill lock; other instances wait for
    /// the value instead of querying the database too.
    #[serde(with = "humantime_serde")]
    pub fill_lock_ttl: Duration,
    /// How long a reader waits for another instance's fill before loading by itself.
    #[serde(with = "humantime_serde")]
    pub fill_wait: Duration,
    /// How often a waiting reader looks for the filled value.
    #[serde(with = "humantime_serde")]
    pub fill_poll_interval: Duration,
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("enabled", &self.enabled)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("ttl_jitter_percent", &self.ttl_jitter_percent)
            .field("fill_lock_ttl", &self.fill_lock_ttl)
            .field("fill_wait", &self.fill_wait)
            .field("fill_poll_interval", &self.fill_poll_interval)
            .finish()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            redis_url: None,
            ttl_jitter_percent: 10,
            fill_lock_ttl: Duration::from_secs(5),
            fill_wait: Duration::from_secs(2),
            fill_poll_interval: Duration::from_millis(20),
        }
    }
}

impl CacheConfig {
    /// The separate cache Redis URL, when one is set.
    pub fn separate_url(&self) -> Option<&str> {
        self.redis_url.as_deref().filter(|u| !u.trim().is_empty())
    }
}

impl ConfigSection for CacheConfig {
    const KEY: &'static str = "cache";

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new(
                "cache.enabled",
                "read through the cache (off: every read goes to the database; writes still invalidate)",
            ),
            Row::new(
                "cache.redis_url",
                "a separate Redis for the cache (run it `allkeys-lru`); the other `redis.*` settings apply to it",
            )
            .default_text("none (the shared-state Redis)"),
            Row::new(
                "cache.ttl_jitter_percent",
                "up to this share is added at random to each entry's TTL, so entries written together expire apart",
            ),
            Row::new(
                "cache.fill_lock_ttl",
                "how long the instance filling a cold entry holds its fill lock (others wait instead of querying)",
            ),
            Row::new("cache.fill_wait", "how long a reader waits for another instance's fill before querying itself"),
            Row::new("cache.fill_poll_interval", "how often a waiting reader looks for the filled entry"),
        ]
    }
}

impl Validate for CacheConfig {
    fn validate(&self, _profile: Profile) -> Result<(), ConfigIssue> {
        if self.ttl_jitter_percent > 50 {
            return Err(ConfigIssue::new("cache.ttl_jitter_percent", "must be at most 50"));
        }
        if self.fill_lock_ttl < Duration::from_millis(100) {
            return Err(ConfigIssue::new("cache.fill_lock_ttl", "must be at least 100ms"));
        }
        if self.fill_poll_interval.is_zero() || self.fill_poll_interval > self.fill_wait.max(Duration::from_millis(1)) {
            return Err(ConfigIssue::new("cache.fill_poll_interval", "must be above 0 and at most `cache.fill_wait`"));
        }
        if let Some(url) = self.separate_url() {
            let scheme = url.split("://").next().unwrap_or_default();
            if !url.contains("://") || !scheme.starts_with("redis") && !scheme.starts_with("valkey") {
                return Err(ConfigIssue::new(
                    "cache.redis_url",
                    "must be a redis:// (or rediss://, redis-cluster://, redis-sentinel://) URL",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(CacheConfig::default().validate(Profile::Development).is_ok());
        let bad = CacheConfig { ttl_jitter_percent: 80, ..CacheConfig::default() };
        assert_eq!(bad.validate(Profile::Development).expect_err("too much").key, "cache.ttl_jitter_percent");
        let bad = CacheConfig { redis_url: Some("http://cache".into()), ..CacheConfig::default() };
        assert_eq!(bad.validate(Profile::Development).expect_err("not redis").key, "cache.redis_url");
        let bad = CacheConfig { fill_poll_interval: Duration::ZERO, ..CacheConfig::default() };
        assert_eq!(bad.validate(Profile::Development).expect_err("zero").key, "cache.fill_poll_interval");
    }

    #[test]
    fn debug_redacts_the_url_password() {
        let cfg = CacheConfig { redis_url: Some("redis://:hunter2-pass@cache:6379".into()), ..CacheConfig::default() };
        assert!(!format!("{cfg:?}").contains("hunter2-pass"));
    }
}
