//! The auth module's failures and their one mapping to HTTP.

use app_core::{ApiError, ErrorCode};
use app_redis::RedisError;
use app_users::UsersError;
use poem::http::StatusCode;

/// A failed auth operation.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email or wrong password (deliberately one error).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The access token is past its expiry.
    #[error("access token expired")]
    TokenExpired,
    /// The access token is not one of ours (signature, algorithm, audience, type).
    #[error("invalid access token")]
    InvalidToken,
    /// The session behind a token is gone (logout, revoke, expiry), or its blob is unreadable.
    #[error("session revoked or expired")]
    SessionRevoked,
    /// A refresh token that is malformed or not the session's current one.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// An already-rotated refresh token: the session is now revoked.
    #[error("refresh token reused")]
    RefreshTokenReused,
    /// The refresh token was rotated moments ago by a concurrent request.
    #[error("refresh token rotated concurrently")]
    RefreshRace,
    /// No session with this id among the caller's.
    #[error("session not found")]
    SessionNotFound,
    /// The users module failed (email taken, user not found, database down).
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] RedisError),
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        use AuthError as E;
        match err {
            E::InvalidCredentials => {
                ApiError::unauthenticated(ErrorCode::InvalidCredentials, "The email or the password is wrong")
            }
            E::TokenExpired => {
                ApiError::unauthenticated(ErrorCode::TokenExpired, "The access token has expired; refresh it")
            }
            E::InvalidToken => ApiError::unauthenticated(ErrorCode::Unauthenticated, "The access token is not valid"),
            E::SessionRevoked => {
                ApiError::unauthenticated(ErrorCode::SessionRevoked, "The session has ended; log in again")
            }
            E::InvalidRefreshToken => {
                ApiError::unauthenticated(ErrorCode::Unauthenticated, "The refresh token is not valid")
            }
            E::RefreshTokenReused => ApiError::unauthenticated(
                ErrorCode::RefreshTokenReused,
                "This refresh token was already used; the session has been revoked. Log in again",
            ),
            E::RefreshRace => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict).with_detail(
                "This refresh token was rotated a moment ago by a concurrent request; use the newest refresh token",
            ),
            E::SessionNotFound => ApiError::not_found("No such session"),
            E::Users(users) => users.into(),
            E::Store(RedisError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "session store unavailable");
                ApiError::unavailable("The session store")
            }
            E::Store(other) => ApiError::internal(other),
        }
    }
}
