//! The auth module's failures, its codes, and their one mapping to HTTP.

use app_core::{ApiError, ErrorCode, problem::StatusCode};
use app_redis::RedisError;
use app_users::UsersError;

/// Login with an unknown email or a wrong password (deliberately indistinguishable).
pub const INVALID_CREDENTIALS: ErrorCode = ErrorCode::new(
    "INVALID_CREDENTIALS",
    "Login with an unknown email or a wrong password (deliberately indistinguishable).",
);
/// The access token has expired.
pub const TOKEN_EXPIRED: ErrorCode = ErrorCode::new("TOKEN_EXPIRED", "The access token has expired; refresh it.");
/// The session behind the token ended.
pub const SESSION_REVOKED: ErrorCode =
    ErrorCode::new("SESSION_REVOKED", "The session behind the token was revoked or has expired; log in again.");
/// An already-rotated refresh token was presented.
pub const REFRESH_TOKEN_REUSED: ErrorCode = ErrorCode::new(
    "REFRESH_TOKEN_REUSED",
    "An already-rotated refresh token was presented; the whole session is revoked.",
);

/// The codes the auth module's answers carry.
pub const CODES: &[ErrorCode] = &[INVALID_CREDENTIALS, TOKEN_EXPIRED, SESSION_REVOKED, REFRESH_TOKEN_REUSED];

/// The codes the bearer guard answers 401 with when the session verifier refuses a token.
pub const BEARER_CODES: &[ErrorCode] = &[TOKEN_EXPIRED, SESSION_REVOKED];

app_core::problem_status! {
    /// 401 on login.
    pub BadLogin = 401, [INVALID_CREDENTIALS], "the email or the password is wrong";
    /// 401 on refresh.
    pub RefreshRefused = 401, [ErrorCode::UNAUTHENTICATED, SESSION_REVOKED, REFRESH_TOKEN_REUSED],
        "the refresh token is not valid, its session ended, or it was already used (the session is then revoked)";
}

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
                ApiError::unauthenticated(INVALID_CREDENTIALS, "The email or the password is wrong")
            }
            E::TokenExpired => ApiError::unauthenticated(TOKEN_EXPIRED, "The access token has expired; refresh it"),
            E::InvalidToken => ApiError::unauthenticated(ErrorCode::UNAUTHENTICATED, "The access token is not valid"),
            E::SessionRevoked => ApiError::unauthenticated(SESSION_REVOKED, "The session has ended; log in again"),
            E::InvalidRefreshToken => {
                ApiError::unauthenticated(ErrorCode::UNAUTHENTICATED, "The refresh token is not valid")
            }
            E::RefreshTokenReused => ApiError::unauthenticated(
                REFRESH_TOKEN_REUSED,
                "This refresh token was already used; the session has been revoked. Log in again",
            ),
            E::RefreshRace => ApiError::new(StatusCode::CONFLICT, ErrorCode::CONFLICT).with_detail(
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
