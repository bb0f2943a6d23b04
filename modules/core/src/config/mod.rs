//! Configuration: the sections modules own, and the loader that reads them.
//!
//! Each module owns its section and declares it with [`ConfigSection`] (`ServerConfig` and
//! `LogConfig` here, the framework's own; `RedisConfig` in `redis`, ...). [`load`] reads the
//! sections of an app's modules with figment: every section deserializes with defaults for
//! missing keys and checks itself with [`Validate`], so a bad value stops start-up with a
//! [`ConfigError`] that names the key and where the value came from.

mod load;
mod section;

use std::{fmt, time::Duration};

pub use load::{ConfigError, DEFAULT_FILE, Loaded, leaf_keys, load, table};
pub use section::{Config, ConfigSection, Row, Section, SectionValue};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A configuration problem found after the values were parsed: which key, and what is wrong.
///
/// `src/` adds where the value came from (file, environment variable, default) before printing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, e.g. `server.port`.
    pub key: String,
    /// What is wrong, as a sentence fragment (`must be at least 1`).
    pub message: String,
}

impl ConfigIssue {
    /// An issue with the value at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.key, self.message)
    }
}

/// A configuration section that can check its own values once they are parsed.
pub trait Validate {
    /// Checks the section for the given profile; the first problem found is returned.
    fn validate(&self, profile: Profile) -> Result<(), ConfigIssue>;
}

/// The deployment profile. Production refuses weak secrets and the in-memory backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Friendly defaults: development secrets, in-memory shared state, pretty logs.
    #[default]
    Development,
    /// Strict: real secrets (>= 32 bytes), an explicit shared-state backend, JSON logs.
    Production,
}

impl Profile {
    /// Whether this is the production profile.
    pub fn is_production(self) -> bool {
        self == Profile::Production
    }
}

/// A secret value (signing key, encryption key, password).
///
/// `Debug` and `Display` never print it, so a config dump or a log line cannot leak it. It
/// deserializes from strings only; `src/` feeds environment variables in verbatim, so a secret
/// that looks like a number (`JWT_SECRET=0123...`) keeps every character.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call it only where the secret is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Serializes as `<redacted>` (or empty): a dump of the effective configuration never shows it.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(<empty>)" } else { "Secret(<redacted>)" })
    }
}

/// Which log format to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty in development, JSON in production.
    #[default]
    Auto,
    /// Human-readable, multi-line, coloured when the output is a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`: logging.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive, e.g. `info` or `info,app_redis=debug`.
    /// `RUST_LOG`, when set, wins.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Auto }
    }
}

impl LogConfig {
    /// Whether to write JSON for this profile.
    pub fn json(&self, profile: Profile) -> bool {
        match self.format {
            LogFormat::Auto => profile.is_production(),
            LogFormat::Pretty => false,
            LogFormat::Json => true,
        }
    }
}

impl ConfigSection for LogConfig {
    const KEY: &'static str = "log";

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new("log.level", "tracing filter, e.g. `info,app_redis=debug`").env_note("(`RUST_LOG` wins)"),
            Row::new("log.format", "`auto` (pretty in development, JSON in production), `pretty`, `json`"),
        ]
    }
}

impl Validate for LogConfig {
    fn validate(&self, _: Profile) -> Result<(), ConfigIssue> {
        if self.level.trim().is_empty() {
            return Err(ConfigIssue::new("log.level", "must not be empty (e.g. `info`)"));
        }
        Ok(())
    }
}

/// `[server]`: the HTTP listener and the limits every request meets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Interface to bind. Unset: `127.0.0.1` in development (a laptop does not expose its
    /// development secrets to the network), `0.0.0.0` in production (containers, load balancers).
    pub host: Option<String>,
    /// TCP port; `0` picks a free one (tests do).
    pub port: u16,
    /// Largest accepted request body in bytes, with or without `Content-Length`.
    pub max_body_bytes: u64,
    /// How long in-flight requests may run after SIGTERM/SIGINT before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How long a request's headers may take to arrive whole, from the connection's opening or
    /// its previous response (so it also closes idle keep-alive connections).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Open connections at most; beyond, new ones wait to be accepted.
    pub max_connections: usize,
    /// SPA origins allowed by CORS (`https://app.example.com`). Empty: no CORS headers at all.
    /// In the environment, a comma-separated list.
    #[serde(deserialize_with = "string_list")]
    pub cors_origins: Vec<String>,
    /// Event loops serving connections, each a thread of its own that a connection stays on
    /// (see `http::serve`). Unset: one per CPU core, one fewer (at least one) beside a Redis on
    /// the same machine (see [`Self::threads`]).
    /// `0`: the shared work-stealing runtime, for a few connections carrying many concurrent
    /// HTTP/2 streams.
    pub threads: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: 3000,
            max_body_bytes: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            cors_origins: Vec::new(),
            threads: None,
        }
    }
}

impl ServerConfig {
    /// The interface to bind for this profile.
    pub fn bind_host(&self, profile: Profile) -> &str {
        match &self.host {
            Some(host) => host,
            None if profile.is_production() => "0.0.0.0",
            None => "127.0.0.1",
        }
    }

    /// The event loops to serve on: `server.threads`, or one per CPU core, one fewer (at least
    /// one) when the app's Redis runs on this machine (`beside_redis`).
    ///
    /// A Redis on the same machine needs a core of its own: every request of every loop waits on
    /// it, and each loop's connection coalesces only its own loop's calls. On a 2-core VM with
    /// Redis beside the app, one loop instead of two spent 14% less CPU per guarded cached read
    /// (app 17.2-20.2 against 19.3-22.8 us, Redis 3.5-3.9 against 4.3-5.2: about 20 requests per
    /// combined call instead of 14) at 9% fewer requests per second. With Redis elsewhere (or
    /// none), a loop per core serves most.
    pub fn threads(&self, beside_redis: bool) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.threads.unwrap_or(if beside_redis { cores.saturating_sub(1).max(1) } else { cores })
    }
}

impl ConfigSection for ServerConfig {
    const KEY: &'static str = "server";
    const ALIASES: &'static [(&'static str, &'static str)] = &[("PORT", "server.port")];

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new("server.host", "interface to bind")
                .default_text("`127.0.0.1` in development, `0.0.0.0` in production"),
            Row::new("server.port", "TCP port (`0`: any free port)"),
            Row::new("server.max_body_bytes", "largest request body, with or without `Content-Length` (413 beyond)"),
            Row::new("server.shutdown_timeout", "how long in-flight requests may finish after SIGTERM/SIGINT"),
            Row::new(
                "server.header_read_timeout",
                "a request's headers must arrive whole within this long of the connection opening or of the previous \
                 response (closed at most an eighth of it later), so it also closes idle keep-alive connections \
                 (behind a load balancer, set it above the balancer's idle timeout: AWS ALB's is 60s)",
            ),
            Row::new(
                "server.idle_timeout",
                "a connection on which nothing is read or written for this long is closed, at most an eighth of it \
                 later (event streams write a heartbeat well inside it)",
            ),
            Row::new(
                "server.max_connections",
                "open connections at most; at the cap new ones wait in the kernel's backlog (keep `ulimit -n` above it)",
            ),
            Row::new("server.cors_origins", "SPA origins allowed by CORS (comma-separated); none: no CORS headers"),
            Row::new(
                "server.threads",
                "event loops serving HTTP connections, each a thread a connection stays on (by default one per \
                 core, and one fewer, at least one, when Redis is on this machine: a loopback or `localhost` \
                 host); `0`: the shared work-stealing runtime instead (for a proxy that sends many concurrent \
                 HTTP/2 streams over a few connections)",
            )
            .default_text("one per CPU core (one fewer beside a local Redis)"),
        ]
    }
}

impl Validate for ServerConfig {
    fn validate(&self, _: Profile) -> Result<(), ConfigIssue> {
        if let Some(host) = &self.host
            && host.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ConfigIssue::new(
                "server.host",
                format!("must be an IP address such as 0.0.0.0 or 127.0.0.1, got {host:?}"),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigIssue::new("server.max_body_bytes", "must be at least 1"));
        }
        if self.shutdown_timeout.is_zero() {
            return Err(ConfigIssue::new("server.shutdown_timeout", "must be longer than 0s"));
        }
        if self.header_read_timeout < Duration::from_millis(100) {
            return Err(ConfigIssue::new("server.header_read_timeout", "must be at least 100ms"));
        }
        if self.idle_timeout < Duration::from_millis(100) {
            return Err(ConfigIssue::new("server.idle_timeout", "must be at least 100ms"));
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigIssue::new("server.max_connections", "must be between 1 and 1000000"));
        }
        if self.threads.is_some_and(|n| n > 1024) {
            return Err(ConfigIssue::new("server.threads", "must be at most 1024"));
        }
        for origin in &self.cors_origins {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && !origin.contains('*');
            if !ok {
                return Err(ConfigIssue::new(
                    "server.cors_origins",
                    format!(
                        "entries must be origins like https://app.example.com (no path, no wildcard), got {origin:?}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A URL with its password replaced, for `Debug` output and logs
/// (`redis://:hunter2@host` -> `redis://:<redacted>@host`).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let authority_end = url[scheme_end..].find(['/', '?']).map_or(url.len(), |i| scheme_end + i);
    let Some(at) = url[scheme_end..authority_end].rfind('@').map(|i| scheme_end + i) else { return url.to_owned() };
    match url[scheme_end..at].find(':') {
        Some(colon) => format!("{}<redacted>{}", &url[..scheme_end + colon + 1], &url[at..]),
        None => url.to_owned(),
    }
}

/// Deserializes a list from either a sequence (TOML) or a comma-separated string (environment).
pub fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;

    impl<'de> de::Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings or a comma-separated string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(ListVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(redact_url("redis://:hunter2@cache:6379/0"), "redis://:<redacted>@cache:6379/0");
        assert_eq!(redact_url("postgres://app:p%40ss@db/app?x=1"), "postgres://app:<redacted>@db/app?x=1");
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact_url("sqlite://data/app.db"), "sqlite://data/app.db");
    }

    #[test]
    fn cors_origins_must_be_bare_origins() {
        let mut cfg = ServerConfig { cors_origins: vec!["https://app.example.com/".into()], ..Default::default() };
        let issue = cfg.validate(Profile::Development).unwrap_err();
        assert_eq!(issue.key, "server.cors_origins");
        cfg.cors_origins = vec!["https://app.example.com".into()];
        assert!(cfg.validate(Profile::Development).is_ok());
    }

    #[test]
    fn log_format_follows_the_profile_when_auto() {
        let cfg = LogConfig::default();
        assert!(!cfg.json(Profile::Development));
        assert!(cfg.json(Profile::Production));
    }
}
