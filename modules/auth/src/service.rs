//! The logic of accounts and sessions.

use std::sync::{Arc, OnceLock};

use app_core::{
    ApiError, ErrorCode, Principal, Role,
    guard::{SessionCheck, SessionVerifier},
};
use app_users::{Email, NewUser, User, UserName, UserRepository, UsersError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shaku::Interface;
use uuid::Uuid;

use crate::{
    AuthConfig, AuthError,
    crypto::SessionCipher,
    password,
    store::{NewSession, Rotation, SessionStore, StoredSession},
    tokens::{AccessClaims, AccessTokens, RefreshKey, RefreshToken, TokenError, new_session_id},
};

/// Where a login came from, recorded in the session (shown in the session list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: Option<String>,
    /// The `User-Agent`, truncated.
    pub user_agent: Option<String>,
}

/// A token pair handed out by login and refresh.
#[derive(Clone)]
pub struct Issued {
    /// The JWT.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Seconds until the session ends unless used (the refresh token's useful life).
    pub refresh_expires_in: u64,
    /// The session.
    pub session_id: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("session_id", &self.session_id).finish_non_exhaustive()
    }
}

/// A session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub id: String,
    /// Creation, epoch ms.
    pub created_at_ms: i64,
    /// Last use, epoch ms.
    pub last_seen_at_ms: i64,
    /// When it ends unless used, epoch ms.
    pub expires_at_ms: i64,
    /// Where it was created from.
    pub client: ClientInfo,
}

/// What a session blob holds (encrypted at rest).
#[derive(Serialize, Deserialize)]
struct SessionData {
    uid: Uuid,
    role: Role,
    ip: Option<String>,
    ua: Option<String>,
}

/// Accounts and sessions.
#[async_trait]
pub trait AuthService: Interface {
    /// Creates an account (role `user` from the API; any role from the CLI).
    async fn register(&self, email: Email, password: String, name: UserName, role: Role) -> Result<User, AuthError>;

    /// Checks the credentials and opens a session.
    async fn login(&self, email: Email, password: String, client: ClientInfo) -> Result<Issued, AuthError>;

    /// Rotates a refresh token (once; reuse revokes the session).
    async fn refresh(&self, refresh_token: &str) -> Result<Issued, AuthError>;

    /// Verifies an access token and the session behind it (one store round trip).
    async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError>;

    /// Checks an access token (as sent: a header's bytes) in process only (signature, algorithm,
    /// audience, expiry, type).
    fn verify_token(&self, access_token: &[u8]) -> Result<AccessClaims, AuthError>;

    /// Checks the session a verified token names (one store round trip).
    async fn check_session(&self, claims: AccessClaims) -> Result<Principal, AuthError>;

    /// Ends one of the user's sessions; `SessionNotFound` when it is not theirs or gone.
    async fn revoke_session(&self, user: Uuid, session_id: &str) -> Result<(), AuthError>;

    /// Ends every session of the user; how many were live.
    async fn revoke_all(&self, user: Uuid) -> Result<u64, AuthError>;

    /// The user's live sessions, oldest first.
    async fn sessions(&self, user: Uuid) -> Result<Vec<SessionInfo>, AuthError>;

    /// Changes a user's role and ends their sessions (the role is recorded in each session).
    async fn set_role(&self, user: Uuid, role: Role) -> Result<User, AuthError>;

    /// Deletes a user and ends their sessions.
    async fn delete_user(&self, user: Uuid) -> Result<(), AuthError>;
}

struct Keys {
    tokens: AccessTokens,
    refresh: RefreshKey,
    cipher: SessionCipher,
}

/// The service over the user repository and the session store.
pub struct AuthServiceImpl {
    users: Arc<dyn UserRepository>,
    store: Arc<dyn SessionStore>,
    /// `[auth]`.
    config: AuthConfig,
    /// Built from `config` on first use.
    keys: OnceLock<Keys>,
    /// Sessions this instance checked, served again while the user's version (read with
    /// the request's rate-limit count) is unchanged: see [`SessionCopies`].
    copies: Option<SessionCopies>,
}

/// Checked sessions kept in process. A copy is served only when the request read the user's
/// version ([`app_core::versions`]) and it equals the version the copy was made under, and only
/// until the session's store record is due for its next touch (at most 1 s): every change that
/// ends a session early moves the version on in the same script, so logout and revocation
/// refuse the next request on every instance, while a busy session costs no session read.
/// Bounded: at most [`SessionCopies::CAPACITY`] sessions.
struct SessionCopies {
    copies: quick_cache::sync::Cache<(Uuid, Arc<str>), SessionCopy>,
}

/// A copy's key as a lookup borrows it (no key is built per request); hashed as the key's tuple is.
#[derive(Hash)]
struct SessionRef<'a>(Uuid, &'a str);

impl quick_cache::Equivalent<(Uuid, Arc<str>)> for SessionRef<'_> {
    fn equivalent(&self, key: &(Uuid, Arc<str>)) -> bool {
        self.0 == key.0 && self.1 == &*key.1
    }
}

#[derive(Clone)]
struct SessionCopy {
    principal: Principal,
    version: i64,
    /// When the store must be asked again (instant on this host).
    until: std::time::Instant,
}

impl SessionCopies {
    const CAPACITY: usize = 100_000;

    fn new() -> Self {
        Self { copies: quick_cache::sync::Cache::new(Self::CAPACITY) }
    }

    /// The copy of the session, when the request's version of the user says it is current.
    fn get(&self, user: Uuid, session: &str) -> Option<Principal> {
        let Some(Some(version)) = app_core::versions::current(user) else { return None };
        let copy = self.copies.get(&SessionRef(user, session))?;
        (copy.version == version && std::time::Instant::now() < copy.until).then_some(copy.principal)
    }

    fn keep(&self, principal: &Principal, stored: &StoredSession, policy_idle: std::time::Duration) {
        let Some(version) = stored.version else { return };
        // As the store's touch: written at most every min(1 s, idle / 4), so the copy lives until
        // the record is next due (and never past the session's end).
        let every = (policy_idle / 4).min(std::time::Duration::from_secs(1)).as_millis() as i64;
        let left = (stored.last_seen_ms + every).min(stored.expires_at_ms) - stored.last_seen_ms;
        let until = std::time::Instant::now() + std::time::Duration::from_millis(u64::try_from(left).unwrap_or(0));
        let copy = SessionCopy { principal: principal.clone(), version, until };
        self.copies.insert((principal.user_id, principal.session_id.clone()), copy);
    }
}

/// The service's parameters.
#[derive(Debug, Clone, Default)]
pub struct AuthServiceParams {
    /// `[auth]`.
    pub config: AuthConfig,
    /// Whether checked sessions are kept in process (on Redis, where users' versions are read).
    pub copies: bool,
}

impl AuthServiceImpl {
    /// The service over `users` and `store`.
    pub fn new(users: Arc<dyn UserRepository>, store: Arc<dyn SessionStore>, config: AuthConfig) -> Self {
        Self { users, store, config, keys: OnceLock::new(), copies: None }
    }

    /// Keeps checked sessions in process, validated by users' versions (see [`SessionCopies`]).
    pub fn with_session_copies(mut self, copies: bool) -> Self {
        self.copies = copies.then(SessionCopies::new);
        self
    }
}

app_core::component! {
    /// The [`AuthService`] over the user repository and the session store.
    pub AuthServiceComponent: dyn AuthService,
    inject(users: dyn UserRepository, store: dyn SessionStore),
    params(p: AuthServiceParams) => Box::new(AuthServiceImpl::new(users, store, p.config).with_session_copies(p.copies))
}

fn secs_until(deadline_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((deadline_ms - now_ms).max(0) / 1000).unwrap_or(0)
}

impl AuthServiceImpl {
    fn keys(&self) -> &Keys {
        self.keys.get_or_init(|| Keys {
            tokens: AccessTokens::new(&self.config),
            refresh: RefreshKey::new(&self.config),
            cipher: SessionCipher::new(
                &self.config.session_encryption_key,
                &self.config.previous_session_encryption_keys,
            ),
        })
    }

    fn issue(&self, user: Uuid, session: &StoredSession, refresh: &RefreshToken) -> Issued {
        let tokens = &self.keys().tokens;
        Issued {
            access_token: tokens.issue(user, &session.session_id),
            expires_in: tokens.ttl().as_secs(),
            refresh_token: refresh.expose(),
            refresh_expires_in: secs_until(session.expires_at_ms, session.last_seen_ms),
            session_id: session.session_id.clone(),
        }
    }

    /// Decrypts a session blob and checks it belongs to `user`. A blob that does not decrypt
    /// (tampered, or sealed by a retired key) ends the request with a 401, never a 500.
    fn open(&self, user: Uuid, session: &StoredSession) -> Result<SessionData, AuthError> {
        let plain = self.keys().cipher.open(&session.session_id, &session.blob).map_err(|_| {
            tracing::warn!(session = %session.session_id, "a session blob failed to decrypt (tampered or retired key)");
            AuthError::SessionRevoked
        })?;
        let data: SessionData = serde_json::from_slice(&plain).map_err(|_| AuthError::SessionRevoked)?;
        if data.uid != user {
            tracing::warn!(session = %session.session_id, "a session blob belongs to another user");
            return Err(AuthError::SessionRevoked);
        }
        Ok(data)
    }
}

#[async_trait]
impl AuthService for AuthServiceImpl {
    async fn register(&self, email: Email, password: String, name: UserName, role: Role) -> Result<User, AuthError> {
        let password_hash = password::hash(password).await;
        let user = self.users.create(NewUser { email, name, role, password_hash }).await?;
        tracing::info!(user = %user.id, "account registered");
        Ok(user)
    }

    async fn login(&self, email: Email, password: String, client: ClientInfo) -> Result<Issued, AuthError> {
        let credentials = self.users.find_credentials(&email).await?;
        let hash = credentials.as_ref().map(|c| c.password_hash.clone());
        // Unknown emails verify against a dummy hash: the same work, the same answer.
        if !password::verify(password, hash).await {
            return Err(AuthError::InvalidCredentials);
        }
        let Some(user) = credentials.map(|c| c.user) else { return Err(AuthError::InvalidCredentials) };
        let session_id = new_session_id();
        let data = SessionData { uid: user.id, role: user.role, ip: client.ip, ua: client.user_agent };
        let plain = serde_json::to_vec(&data).expect("session data serializes");
        let blob = self.keys().cipher.seal(&session_id, &plain);
        let refresh = RefreshToken::generate(user.id, &session_id);
        let session =
            self.store.create(NewSession { user_id: user.id, session_id, blob, refresh_hash: refresh.hash() }).await?;
        // A role change or a deletion that ran while this login was hashing has already revoked
        // the user's sessions, but not this one, which records the role read before it. Read
        // the account again: if it changed, the new session goes too.
        let current = self.users.find(user.id).await;
        if !matches!(&current, Ok(Some(now)) if now.role == user.role) {
            self.store.revoke(user.id, &session.session_id).await?;
            current?;
            return Err(AuthError::InvalidCredentials);
        }
        tracing::info!(user = %user.id, session = %session.session_id, "logged in");
        Ok(self.issue(user.id, &session, &refresh))
    }

    async fn refresh(&self, presented: &str) -> Result<Issued, AuthError> {
        let presented = RefreshToken::parse(presented).ok_or(AuthError::InvalidRefreshToken)?;
        let next = presented.successor(&self.keys().refresh);
        let outcome =
            self.store.rotate(presented.user_id, &presented.session_id, &presented.hash(), &next.hash()).await?;
        match outcome {
            Rotation::Rotated(session) | Rotation::Repeated(session) => {
                self.open(presented.user_id, &session)?;
                Ok(self.issue(presented.user_id, &session, &next))
            }
            Rotation::Concurrent => Err(AuthError::RefreshRace),
            Rotation::Reused => {
                tracing::warn!(
                    user = %presented.user_id,
                    session = %presented.session_id,
                    "a rotated refresh token was presented again; the session is revoked"
                );
                Err(AuthError::RefreshTokenReused)
            }
            Rotation::Mismatch => Err(AuthError::InvalidRefreshToken),
            Rotation::Missing => Err(AuthError::SessionRevoked),
        }
    }

    async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        let claims = self.verify_token(access_token.as_bytes())?;
        self.check_session(claims).await
    }

    fn verify_token(&self, access_token: &[u8]) -> Result<AccessClaims, AuthError> {
        self.keys().tokens.verify(access_token).map_err(|e| match e {
            TokenError::Expired => AuthError::TokenExpired,
            TokenError::Invalid => AuthError::InvalidToken,
        })
    }

    async fn check_session(&self, claims: AccessClaims) -> Result<Principal, AuthError> {
        if let Some(principal) = self.copies.as_ref().and_then(|c| c.get(claims.user_id, &claims.session_id)) {
            return Ok(principal);
        }
        let session = self.store.touch(claims.user_id, &claims.session_id).await?.ok_or(AuthError::SessionRevoked)?;
        let data = self.open(claims.user_id, &session)?;
        let principal = Principal { user_id: claims.user_id, session_id: claims.session_id, role: data.role };
        if let Some(copies) = &self.copies {
            copies.keep(&principal, &session, self.config.session_idle_timeout);
        }
        Ok(principal)
    }

    async fn revoke_session(&self, user: Uuid, session_id: &str) -> Result<(), AuthError> {
        if !crate::tokens::is_session_id(session_id) || !self.store.revoke(user, session_id).await? {
            return Err(AuthError::SessionNotFound);
        }
        tracing::info!(user = %user, session = %session_id, "session revoked");
        Ok(())
    }

    async fn revoke_all(&self, user: Uuid) -> Result<u64, AuthError> {
        let n = self.store.revoke_all(user).await?;
        tracing::info!(user = %user, sessions = n, "all sessions revoked");
        Ok(n)
    }

    async fn sessions(&self, user: Uuid) -> Result<Vec<SessionInfo>, AuthError> {
        let stored = self.store.list(user).await?;
        Ok(stored
            .into_iter()
            .filter_map(|s| {
                let data = self.open(user, &s).ok()?;
                Some(SessionInfo {
                    id: s.session_id,
                    created_at_ms: s.created_at_ms,
                    last_seen_at_ms: s.last_seen_ms,
                    expires_at_ms: s.expires_at_ms,
                    client: ClientInfo { ip: data.ip, user_agent: data.ua },
                })
            })
            .collect())
    }

    async fn set_role(&self, user: Uuid, role: Role) -> Result<User, AuthError> {
        let updated = self.users.set_role(user, role).await?;
        // Sessions go whatever the update found, so a retry after a failed revoke still ends them.
        self.revoke_all(user).await?;
        Ok(updated.ok_or(UsersError::NotFound)?)
    }

    async fn delete_user(&self, user: Uuid) -> Result<(), AuthError> {
        // Before (no new request gets through) and after (a login that raced the delete).
        self.revoke_all(user).await?;
        let existed = self.users.delete(user).await?;
        self.revoke_all(user).await?;
        if existed { Ok(()) } else { Err(UsersError::NotFound.into()) }
    }
}

/// The bearer guard's port, implemented by the auth service.
pub struct AuthVerifier(pub Arc<dyn AuthService>);

#[async_trait]
impl SessionVerifier for AuthVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        Ok(self.0.authenticate(token).await?)
    }

    async fn check_session(&self, user: Uuid, session: &str) -> Result<Principal, ApiError> {
        if !crate::tokens::is_session_id(session) {
            return Err(AuthError::SessionRevoked.into());
        }
        Ok(self.0.check_session(AccessClaims { user_id: user, session_id: session.into() }).await?)
    }

    fn codes(&self) -> &'static [ErrorCode] {
        crate::error::BEARER_CODES
    }

    fn begin(&self, token: &[u8]) -> Option<(Uuid, SessionCheck)> {
        let claims = self.0.verify_token(token).ok()?;
        let (user, service) = (claims.user_id, self.0.clone());
        Some((user, Box::pin(async move { Ok(service.check_session(claims).await?) })))
    }
}

#[cfg(test)]
mod tests {
    use app_core::{
        guard::Role,
        versions::{self, ReadVersion},
    };

    use super::*;

    #[tokio::test]
    async fn a_kept_session_copy_is_found_by_a_borrowed_key_while_the_version_stands() {
        let copies = SessionCopies::new();
        let (user, session) = (Uuid::now_v7(), new_session_id());
        let principal = Principal { user_id: user, session_id: session.as_str().into(), role: Role::User };
        let now = 1_000_000;
        let stored = StoredSession {
            session_id: session.clone(),
            blob: Vec::new(),
            created_at_ms: now,
            last_seen_ms: now,
            expires_at_ms: now + 60_000,
            version: Some(7),
        };
        copies.keep(&principal, &stored, std::time::Duration::from_secs(60));
        let read = |version| Some(ReadVersion { user, version: Some(version) });
        let found = versions::scope(read(7), async { copies.get(user, &session) }).await;
        assert_eq!(found.map(|p| p.session_id), Some(principal.session_id.clone()));
        assert!(versions::scope(read(8), async { copies.get(user, &session) }).await.is_none(), "version moved on");
        let other = new_session_id();
        assert!(versions::scope(read(7), async { copies.get(user, &other) }).await.is_none(), "another session");
    }
}
