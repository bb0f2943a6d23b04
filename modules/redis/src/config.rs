//! `[redis]`: where shared state lives, and how hard to try when Redis misbehaves.

use std::time::Duration;

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Secret, Validate, redact_url};
use serde::{Deserialize, Serialize};

/// `[redis]` configuration. With neither `url` nor `host` set, shared state runs on the
/// in-process memory backend (one instance only).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` (TLS), `redis-cluster://host:port?node=h2:p2`,
    /// `redis-sentinel://host:26379/0?sentinelServiceName=mymaster&node=h2:26379`.
    /// Env: `REDIS_URL` or `APP_REDIS__URL`. Wins over `host`/`port`.
    pub url: Option<String>,
    /// Host of a single Redis node, when no URL is given.
    pub host: Option<String>,
    /// Port for `host`.
    pub port: u16,
    /// ACL user name for `host` (Redis 6+), optional.
    pub username: Option<String>,
    /// Password for `host`.
    pub password: Option<Secret>,
    /// Database number for `host` (Redis Cluster only has 0).
    pub db: u8,
    /// TLS for `host` (a URL says it with `rediss://`).
    pub tls: bool,
    /// Prefix of every key this app writes, so several apps can share one Redis.
    pub key_prefix: String,
    /// Connections in the command pool, which work off the event loops (job workers, sweeps)
    /// uses; each multiplexes and pipelines concurrent commands. Each event loop has its own.
    pub pool_size: usize,
    /// Time to establish a connection (including TLS) before the attempt counts as failed.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time a command may take before it fails. Keeps a frozen Redis from hanging requests:
    /// they fail fast with 503 instead.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Commands queued while disconnected before new ones fail at once (backpressure).
    pub max_command_buffer: usize,
    /// A connection whose replies stall this long is closed and re-established.
    #[serde(with = "humantime_serde")]
    pub unresponsive_timeout: Duration,
    /// First reconnect delay; doubles per attempt (with jitter) up to `reconnect_max_delay`.
    /// Reconnection never gives up.
    #[serde(with = "humantime_serde")]
    pub reconnect_min_delay: Duration,
    /// Cap of the reconnect delay.
    #[serde(with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
    /// Lets the production profile run on the in-memory backend (a single instance that accepts
    /// losing sessions and counters on restart).
    pub allow_memory_in_production: bool,
}

/// Prints every field, with the URL's password redacted (the password field is a [`Secret`]).
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_command_buffer", &self.max_command_buffer)
            .field("unresponsive_timeout", &self.unresponsive_timeout)
            .field("reconnect_min_delay", &self.reconnect_min_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("allow_memory_in_production", &self.allow_memory_in_production)
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            host: None,
            port: 6379,
            username: None,
            password: None,
            db: 0,
            tls: false,
            key_prefix: "app:".into(),
            pool_size: 2,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            max_command_buffer: 10_000,
            unresponsive_timeout: Duration::from_secs(5),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(10),
            allow_memory_in_production: false,
        }
    }
}

impl RedisConfig {
    /// Whether a Redis server is configured (else: the memory backend).
    pub fn is_configured(&self) -> bool {
        self.url.as_deref().is_some_and(|u| !u.trim().is_empty())
            || self.host.as_deref().is_some_and(|h| !h.trim().is_empty())
    }

    /// Whether the Redis server runs on this machine: its host (a URL's, or `host`) is a
    /// loopback address, `localhost`, or the unspecified address (`0.0.0.0`, `::`, which a
    /// client connects to as this machine). It then competes with the app for the cores (see
    /// `ServerConfig::threads`).
    pub fn on_this_machine(&self) -> bool {
        let host = match self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => url::Url::parse(url.trim()).ok().and_then(|u| u.host_str().map(str::to_owned)),
            None => self.host.as_deref().map(|h| h.trim().to_owned()),
        };
        host.is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
        })
    }
}

impl Validate for RedisConfig {
    fn validate(&self, profile: Profile) -> Result<(), ConfigIssue> {
        if let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            const SCHEMES: &[&str] = &[
                "redis",
                "rediss",
                "valkey",
                "valkeys",
                "redis-cluster",
                "rediss-cluster",
                "redis-sentinel",
                "rediss-sentinel",
            ];
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            let problem = match scheme {
                Some(scheme) if SCHEMES.contains(&scheme) => {
                    fred::prelude::Config::from_url(url).err().map(|e| e.details().to_owned())
                }
                _ => Some("unknown scheme".to_owned()),
            };
            if let Some(problem) = problem {
                // The URL itself is not repeated: it may carry a password.
                return Err(ConfigIssue::new(
                    "redis.url",
                    format!(
                        "is not a valid Redis URL ({problem}); expected redis://, rediss://, redis-cluster:// or redis-sentinel://"
                    ),
                ));
            }
        }
        if !self.is_configured() && profile.is_production() && !self.allow_memory_in_production {
            return Err(ConfigIssue::new(
                "redis.url",
                "is required in production: shared state (sessions, rate limits, locks, jobs) must live in Redis \
                 to be shared by every instance; set REDIS_URL, or set redis.allow_memory_in_production = true \
                 for a single instance",
            ));
        }
        if self.key_prefix.contains(['{', '}', ' ']) {
            return Err(ConfigIssue::new(
                "redis.key_prefix",
                "must not contain braces or spaces (braces are hash tags)",
            ));
        }
        if self.pool_size == 0 || self.pool_size > 64 {
            return Err(ConfigIssue::new("redis.pool_size", "must be between 1 and 64"));
        }
        for (key, value) in [
            ("redis.connect_timeout", self.connect_timeout),
            ("redis.command_timeout", self.command_timeout),
            ("redis.unresponsive_timeout", self.unresponsive_timeout),
            ("redis.reconnect_min_delay", self.reconnect_min_delay),
        ] {
            if value.is_zero() {
                return Err(ConfigIssue::new(
                    key,
                    "must be longer than 0s (no timeout would let a frozen Redis hang requests)",
                ));
            }
        }
        if self.reconnect_max_delay < self.reconnect_min_delay {
            return Err(ConfigIssue::new(
                "redis.reconnect_max_delay",
                "must not be shorter than redis.reconnect_min_delay",
            ));
        }
        if self.max_command_buffer == 0 {
            return Err(ConfigIssue::new("redis.max_command_buffer", "must be at least 1"));
        }
        Ok(())
    }
}

impl ConfigSection for RedisConfig {
    const KEY: &'static str = "redis";
    const ALIASES: &'static [(&'static str, &'static str)] = &[("REDIS_URL", "redis.url")];

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new(
                "redis.url",
                "`redis://`, `rediss://` (TLS), `redis-cluster://h:p?node=h2:p2`, \
                 `redis-sentinel://h:26379/0?sentinelServiceName=mymaster&node=h2:26379`",
            )
            .default_text("none (memory backend)"),
            Row::new("redis.host", "a single node by host, when no URL is given"),
            Row::new("redis.port", "port for `redis.host`"),
            Row::new("redis.username", "ACL user for `redis.host`"),
            Row::new("redis.password", "password for `redis.host`"),
            Row::new("redis.db", "database number for `redis.host` (Cluster has only 0)"),
            Row::new("redis.tls", "TLS for `redis.host`"),
            Row::new("redis.key_prefix", "prefix of every key and channel the app uses"),
            Row::new(
                "redis.pool_size",
                "pipelining connections for commands off the event loops (background work); each event loop has one of \
                 its own, and pub/sub one more",
            ),
            Row::new("redis.connect_timeout", "time to establish a connection"),
            Row::new(
                "redis.command_timeout",
                "a command fails after this: a frozen Redis gives fast 503s, not hung requests",
            ),
            Row::new("redis.max_command_buffer", "commands queued while disconnected before new ones fail at once"),
            Row::new("redis.unresponsive_timeout", "a connection whose replies stall this long is replaced"),
            Row::new(
                "redis.reconnect_min_delay",
                "first reconnect delay; doubles with jitter; reconnection never gives up",
            ),
            Row::new("redis.reconnect_max_delay", "cap of the reconnect delay"),
            Row::new(
                "redis.allow_memory_in_production",
                "let production run a single instance on in-memory shared state",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_the_memory_backend_unless_allowed() {
        let mut cfg = RedisConfig::default();
        assert!(cfg.validate(Profile::Development).is_ok());
        assert_eq!(cfg.validate(Profile::Production).unwrap_err().key, "redis.url");
        cfg.allow_memory_in_production = true;
        assert!(cfg.validate(Profile::Production).is_ok());
        cfg.url = Some("redis://127.0.0.1:6379".into());
        cfg.allow_memory_in_production = false;
        assert!(cfg.validate(Profile::Production).is_ok());
    }

    #[test]
    fn a_loopback_or_localhost_redis_is_on_this_machine() {
        let at = |url: &str| RedisConfig { url: Some(url.into()), ..RedisConfig::default() }.on_this_machine();
        for url in [
            "redis://127.0.0.1:6379",
            "redis://localhost",
            "rediss://[::1]:6380/0",
            "redis://:pw@127.0.0.2",
            "redis://0.0.0.0:6379",
        ] {
            assert!(at(url), "{url}");
        }
        for url in
            ["redis://10.0.0.5:6379", "redis://cache.internal", "redis-cluster://10.0.0.1:7000?node=10.0.0.2:7001"]
        {
            assert!(!at(url), "{url}");
        }
        let host = |h: &str| RedisConfig { host: Some(h.into()), ..RedisConfig::default() }.on_this_machine();
        assert!(host("127.0.0.1") && host("localhost") && !host("redis"));
        assert!(!RedisConfig::default().on_this_machine(), "no Redis at all (the memory backend)");
    }

    #[test]
    fn every_url_form_parses_and_garbage_does_not() {
        for url in [
            "redis://127.0.0.1:6379/2",
            "redis://:secret@127.0.0.1:6379",
            "rediss://cache.example.com:6380",
            "redis-cluster://10.0.0.1:7000?node=10.0.0.2:7001&node=10.0.0.3:7002",
            "redis-sentinel://10.0.0.1:26379/0?sentinelServiceName=mymaster&node=10.0.0.2:26379",
        ] {
            let cfg = RedisConfig { url: Some(url.into()), ..Default::default() };
            assert!(cfg.validate(Profile::Development).is_ok(), "{url}");
        }
        let cfg = RedisConfig { url: Some("http://nope".into()), ..Default::default() };
        assert_eq!(cfg.validate(Profile::Development).unwrap_err().key, "redis.url");
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let cfg = RedisConfig { command_timeout: Duration::ZERO, ..Default::default() };
        assert_eq!(cfg.validate(Profile::Development).unwrap_err().key, "redis.command_timeout");
    }
}
