//! The users module's failures, its codes, and their one mapping to HTTP.

use app_core::{ApiError, ErrorCode};
use app_database::DbError;

/// The email is already registered.
pub const EMAIL_TAKEN: ErrorCode = ErrorCode::new("EMAIL_TAKEN", "The email is already registered.");

/// The codes the users module's answers carry.
pub const CODES: &[ErrorCode] = &[EMAIL_TAKEN];

app_core::problem_status! {
    /// 409 `EMAIL_TAKEN`: for operations that create or rename accounts by email.
    pub EmailTaken = 409, [EMAIL_TAKEN], "an account with this email already exists";
}

/// A failed users operation.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// Another account already uses this email (compared case-insensitively).
    #[error("email already registered")]
    EmailTaken,
    /// No such user.
    #[error("user not found")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for UsersError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            return UsersError::EmailTaken;
        }
        UsersError::Db(err.into())
    }
}

impl From<UsersError> for ApiError {
    fn from(err: UsersError) -> Self {
        match err {
            UsersError::EmailTaken => ApiError::conflict(EMAIL_TAKEN, "An account with this email already exists"),
            UsersError::NotFound => ApiError::not_found("No such user"),
            UsersError::Db(db) => db.into(),
        }
    }
}
