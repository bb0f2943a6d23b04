//! The auth module: register and login, access tokens bound to server-side sessions, refresh
//! rotation with reuse detection, session management, and the session verifier behind the
//! bearer guard.
//!
//! - Passwords: argon2id with OWASP's parameters, hashed off the async workers.
//! - Access tokens: HS256 JWTs (the one accepted algorithm) naming user and session; every
//!   guarded request also checks the session (one Redis round trip), so logout and revocation
//!   take effect at once on every instance.
//! - Sessions: in the [`SessionStore`](store::SessionStore) port (Redis, or memory for a single
//!   instance), encrypted at rest with AES-256-GCM, capped per user, with idle and absolute
//!   expiry enforced by the store's clock.
//! - Refresh tokens: opaque, stored hashed, rotated atomically; reuse revokes the session.
//!
//! Depends on `core`, `redis` and `users`; no feature module depends on `auth` (they use the
//! guards in `core`, which reach this module through the `SessionVerifier` port).

mod api;
mod config;
mod crypto;
mod error;
mod module;
pub mod password;
mod service;
pub mod store;
mod tokens;

pub use api::{AuthApi, REFRESH_COOKIE};
pub use config::{AuthConfig, DEV_JWT_SECRET, DEV_SESSION_KEY};
pub use error::{AuthError, INVALID_CREDENTIALS, REFRESH_TOKEN_REUSED, SESSION_REVOKED, TOKEN_EXPIRED};
pub use module::{AuthContainer, AuthModule, SessionStoreBinding};
pub use service::{
    AuthService, AuthServiceComponent, AuthServiceImpl, AuthServiceParams, AuthVerifier, ClientInfo, SessionInfo,
};
pub use store::SessionPolicy;
pub use tokens::AccessClaims;

impl AuthConfig {
    /// The session store's policy from this configuration.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle: self.session_idle_timeout,
            absolute: self.session_absolute_timeout,
            max_per_user: self.max_sessions_per_user,
            race_grace: self.refresh_race_grace,
            ..SessionPolicy::default()
        }
    }
}
