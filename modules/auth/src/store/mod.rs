//! The session store port and its two adapters (Redis, memory).
//!
//! The store keeps opaque (encrypted) blobs plus the few plaintext fields the atomic operations
//! need: timestamps, the current refresh-token hash and recently rotated hashes. Every
//! operation on an existing session only ever updates it in place and never creates it, so a
//! slow write racing a revoke cannot bring a destroyed session back. Time comes from the store
//! (Redis `TIME`), so instance clocks do not matter.
//!
//! Redis key layout, one hash tag per user so every multi-key operation stays in one slot:
//! `<prefix>sess:{u:<uid>}:<sid>` (hash), `...:<sid>:old` (rotated refresh hashes, a capped
//! list) and `...:index` (sorted set of the user's session ids by absolute expiry). Every key
//! has a TTL; the index is pruned on each login and listing.

mod memory;
mod redis;

use std::time::Duration;

use app_redis::RedisError;
use async_trait::async_trait;
use shaku::Interface;
use uuid::Uuid;

pub use memory::MemorySessionStore;
pub use redis::RedisSessionStore;

/// Lifetimes and limits every adapter enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after it was created.
    pub absolute: Duration,
    /// Sessions per user; creating one more ends the oldest.
    pub max_per_user: u32,
    /// How long the just-rotated refresh token answers `Concurrent` rather than `Reused`.
    pub race_grace: Duration,
    /// How many rotated refresh hashes a session remembers for reuse detection.
    pub rotated_kept: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(7 * 24 * 3600),
            absolute: Duration::from_secs(30 * 24 * 3600),
            max_per_user: 20,
            race_grace: Duration::from_secs(10),
            rotated_kept: 64,
        }
    }
}

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The owner.
    pub user_id: Uuid,
    /// The session id (128 random bits).
    pub session_id: String,
    /// The encrypted session data.
    pub blob: Vec<u8>,
    /// The hash of the first refresh token.
    pub refresh_hash: String,
}

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The session id.
    pub session_id: String,
    /// The encrypted session data.
    pub blob: Vec<u8>,
    /// Creation time, epoch milliseconds (store clock).
    pub created_at_ms: i64,
    /// Last use, epoch milliseconds.
    pub last_seen_ms: i64,
    /// When it ends unless used again: the earlier of the idle and the absolute deadline.
    pub expires_at_ms: i64,
    /// The user's version (`app_core::versions`) when the session was read (a session check on
    /// Redis; `None` elsewhere).
    pub version: Option<i64>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current; it is now rotated (the session was touched).
    Rotated(StoredSession),
    /// The token was rotated moments ago (within the grace period) into the same `next`: a
    /// second tab or a retry. The session is touched and returned; nothing else changes.
    Repeated(StoredSession),
    /// The token was rotated moments ago into something else; nothing changed.
    Concurrent,
    /// The token was rotated earlier: treated as theft, the session is now revoked.
    Reused,
    /// The session exists but the token is none of its recent ones.
    Mismatch,
    /// The session does not exist (expired, revoked).
    Missing,
}

/// Where sessions live.
#[async_trait]
pub trait SessionStore: Interface {
    /// Stores a new session, ending the user's oldest sessions beyond the cap.
    async fn create(&self, session: NewSession) -> Result<StoredSession, RedisError>;

    /// The live session, its idle deadline extended; `None` when it is gone. This is the
    /// bearer guard's one round trip.
    async fn touch(&self, user: Uuid, session_id: &str) -> Result<Option<StoredSession>, RedisError>;

    /// Atomically checks a presented refresh-token hash and rotates it to `next` (the
    /// presented token's deterministic successor).
    async fn rotate(&self, user: Uuid, session_id: &str, presented: &str, next: &str) -> Result<Rotation, RedisError>;

    /// The user's live sessions, oldest first.
    async fn list(&self, user: Uuid) -> Result<Vec<StoredSession>, RedisError>;

    /// Ends one session; whether it was live.
    async fn revoke(&self, user: Uuid, session_id: &str) -> Result<bool, RedisError>;

    /// Ends every session of the user; how many were live.
    async fn revoke_all(&self, user: Uuid) -> Result<u64, RedisError>;
}

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
mod tests;
