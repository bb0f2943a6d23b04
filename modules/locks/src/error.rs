//! The locks module's failures and their one mapping to HTTP.

use std::time::Duration;

use app_core::{ApiError, ErrorCode};
use app_redis::RedisError;
use poem::http::StatusCode;

/// A failed lock operation.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another holder has the lock.
    #[error("locked by another holder")]
    Locked {
        /// Time left on the other holder's lease.
        retry_after: Duration,
    },
    /// The token does not hold the lock (it never did, or its lease ran out).
    #[error("lock not held")]
    NotHeld,
    /// The lock store cannot be reached; locks fail closed.
    #[error("lock store unavailable: {0}")]
    Unavailable(#[from] RedisError),
}

impl From<LockError> for ApiError {
    fn from(err: LockError) -> Self {
        match err {
            LockError::Locked { retry_after } => {
                let secs = retry_after.as_millis().div_ceil(1000).max(1) as u64;
                ApiError::new(StatusCode::LOCKED, ErrorCode::Locked)
                    .with_detail(format!("Locked by another holder; the lock expires in {secs} s at the latest"))
                    .with_retry_after(secs)
            }
            LockError::NotHeld => ApiError::conflict(
                ErrorCode::LockNotHeld,
                "This lock token does not hold the lock (it expired or was released)",
            ),
            LockError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the lock store is unavailable");
                ApiError::unavailable("The lock service")
            }
        }
    }
}
