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
            // Errors raised while the client is (re)connecting or shutting down are outages too.
            K::Unknown if !err.details().starts_with("ERR") => RedisError::Unavailable(err.to_string()),
            _ => RedisError::Command(err.to_string()),
        }
    }
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
