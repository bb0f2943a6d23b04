//! The database module's failures.

use app_core::ApiError;

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (connect refused, pool timed out, connection lost).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A migration failed; the schema is not what the code expects.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A query failed for another reason (a bug, a constraint the caller did not map).
    #[error("database query failed: {0}")]
    Query(String),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                DbError::Unavailable(err.to_string())
            }
            sqlx::Error::Migrate(e) => DbError::Migration(e.to_string()),
            other => DbError::Query(other.to_string()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::unavailable("The database")
            }
            other => ApiError::internal(other),
        }
    }
}
