//! The jobs module's failures and their one mapping to HTTP.

use app_core::{ApiError, ErrorCode, FieldError};
use app_redis::RedisError;

/// A failed jobs operation.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// No such job, or it belongs to someone else (indistinguishable on purpose).
    #[error("job not found")]
    NotFound,
    /// No such queue (admin routes).
    #[error("queue not found")]
    QueueNotFound,
    /// Invalid submission.
    #[error("invalid job")]
    Invalid(Vec<FieldError>),
    /// The request conflicts with the job's state (cancelling a finished job, fetching the result
    /// of an unfinished one).
    #[error("{0}")]
    Conflict(&'static str),
    /// The owner has `jobs.max_open_per_user` pending and active jobs of this type already.
    #[error("the owner has {limit} open jobs of this type")]
    QuotaExceeded {
        /// `jobs.max_open_per_user`.
        limit: u32,
    },
    /// A used, expired or foreign event-stream ticket.
    #[error("invalid ticket")]
    BadTicket,
    /// The job store cannot be reached; submissions and reads answer 503.
    #[error("job store unavailable: {0}")]
    Unavailable(#[from] RedisError),
    /// The database holding result documents failed.
    #[error(transparent)]
    Database(app_database::DbError),
}

impl From<JobsError> for ApiError {
    fn from(err: JobsError) -> Self {
        match err {
            JobsError::NotFound => ApiError::not_found("No such job"),
            JobsError::QueueNotFound => ApiError::not_found("No such queue"),
            JobsError::Invalid(errors) => ApiError::validation(errors),
            JobsError::Conflict(detail) => ApiError::conflict(ErrorCode::CONFLICT, detail),
            JobsError::QuotaExceeded { limit } => ApiError::quota_exceeded(
                "jobs.max_open_per_user",
                format!("You have {limit} jobs of this type pending or running; wait for one to finish"),
            ),
            JobsError::BadTicket => ApiError::unauthenticated(
                ErrorCode::UNAUTHENTICATED,
                "The stream ticket is invalid, expired, already used, or for another job",
            ),
            JobsError::Database(db) => db.into(),
            JobsError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the job store is unavailable");
                ApiError::unavailable("The job service")
            }
        }
    }
}
