//! The redis module's failures, in terms a caller can act on without knowing the client crate.

use app_core::ApiError;

/// A failed Redis operation.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Redis cannot be reached right now (disconnected, timed out, backpressure). Callers degrade
    /// (cache bypass, rate-limit fail-open) or answer 503.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error (a script error, a wrong type). A bug, not an outage.
    #[error("redis command failed: {0}")]
    Command(String),
    /// The configuration cannot produce a client (bad URL, TLS set-up).
    #[error("redis configuration: {0}")]
    Config(String),
}

impl RedisError {
    /// Whether the error is an outage (as opposed to a bug).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RedisError::Unavailable(_))
    }
}

impl From<fred::error::Error> for RedisError {
    fn from(err: fred::error::Error) -> Self {
        use fred::error::ErrorKind as K;
        match err.kind() {
            K::IO | K::Timeout | K::Canceled | K::Backpressure | K::Routing | K::Cluster | K::Sentinel | K::Auth => {
                RedisError::Unavailable(err.to_string())
            }
            K::Config | K::Url | K::Tls => RedisError::Config(err.to_string()),
            K::Unknown if !is_command_error(err.details()) => RedisError::Unavailable(err.to_string()),
            _ => RedisError::Command(err.to_string()),
        }
    }
}

/// Whether an error's text is a Redis error reply about the command itself (`ERR ..`,
/// `NOGROUP ..`, `WRONGTYPE ..`), as opposed to one that says the server cannot serve now
/// (`LOADING`, `BUSY`, a failover's `READONLY`, ...) or the client's own words while it
/// (re)connects or shuts down: those are outages.
fn is_command_error(details: &str) -> bool {
    const OUTAGES: &[&str] = &["LOADING", "BUSY", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS"];
    let code = details.split_whitespace().next().unwrap_or_default();
    let is_code = code.len() >= 3 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    is_code && !OUTAGES.contains(&code)
}

impl From<RedisError> for ApiError {
    fn from(err: RedisError) -> Self {
        match err {
            RedisError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "redis unavailable");
                ApiError::unavailable("Shared state storage")
            }
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_about_the_command_is_not_an_outage() {
        for reply in ["ERR wrong number of arguments", "NOGROUP No such key 'q' or consumer group", "WRONGTYPE x"] {
            assert!(is_command_error(reply), "{reply}");
        }
        for outage in ["LOADING Redis is loading", "READONLY You can't write against a read only replica", "Canceled"] {
            assert!(!is_command_error(outage), "{outage}");
        }
    }
}
