//! The library module's failures and their one mapping to HTTP.

use app_core::{ApiError, ErrorCode, FieldError};
use app_database::DbError;
use app_locks::LockError;

/// A failed library operation.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// No such item, or it belongs to someone else (indistinguishable on purpose).
    #[error("library item not found")]
    NotFound,
    /// Invalid input.
    #[error("invalid library item")]
    Invalid(Vec<FieldError>),
    /// The item has seen a newer fencing token: the caller's lock was lost meanwhile.
    #[error("a newer lock holder changed the item")]
    Stale,
    /// The owner's library holds its maximum of items.
    #[error("the library holds its maximum of {limit} items")]
    QuotaExceeded {
        /// `library.max_items_per_user`.
        limit: u64,
    },
    /// A lock failure (held by another, not held, lock store down).
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for LibraryError {
    fn from(err: sqlx::Error) -> Self {
        LibraryError::Db(err.into())
    }
}

impl From<LibraryError> for ApiError {
    fn from(err: LibraryError) -> Self {
        match err {
            LibraryError::NotFound => ApiError::not_found("No such library item"),
            LibraryError::Invalid(errors) => ApiError::validation(errors),
            LibraryError::Stale => ApiError::conflict(
                ErrorCode::CONFLICT,
                "The item was changed under a newer lock; your lock expired meanwhile. Reload it and try again",
            ),
            LibraryError::QuotaExceeded { limit } => ApiError::quota_exceeded(
                "library.max_items_per_user",
                format!("Your library holds its maximum of {limit} items; delete some to add more"),
            ),
            LibraryError::Lock(lock) => lock.into(),
            LibraryError::Db(db) => db.into(),
        }
    }
}
