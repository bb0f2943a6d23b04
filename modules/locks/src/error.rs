//! The locks module's failures, their codes, and their one mapping to HTTP.

use std::time::Duration;

use app_core::{ApiError, ErrorCode, problem::StatusCode};
use app_redis::RedisError;

/// The resource is locked by another holder.
pub const LOCKED: ErrorCode = ErrorCode::new("LOCKED", "The resource is locked by another holder; see `retryAfter`.");
/// The lock token is not the current holder's.
pub const LOCK_NOT_HELD: ErrorCode =
    ErrorCode::new("LOCK_NOT_HELD", "The lock token is not the current holder's (it expired or was released).");

/// The codes the locks module's answers carry.
pub const CODES: &[ErrorCode] = &[LOCKED, LOCK_NOT_HELD];

app_core::problem_status! {
    /// 423 `LOCKED`, with `Retry-After`: for operations of a lockable resource.
    pub Locked = 423, [LOCKED], "another holder has the lock; retry after `Retry-After` seconds",
        retry_after = "Seconds until the other holder's lease ends at the latest";
    /// 409 `LOCK_NOT_HELD`: for operations that take a lock token.
    pub LockNotHeld = 409, [LOCK_NOT_HELD], "the lock token does not hold the lock (it expired or was released)";
}

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
                ApiError::new(StatusCode::LOCKED, LOCKED)
                    .with_detail(format!("Locked by another holder; the lock expires in {secs} s at the latest"))
                    .with_retry_after(secs)
            }
            LockError::NotHeld => {
                ApiError::conflict(LOCK_NOT_HELD, "This lock token does not hold the lock (it expired or was released)")
            }
            LockError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the lock store is unavailable");
                ApiError::unavailable("The lock service")
            }
        }
    }
}
