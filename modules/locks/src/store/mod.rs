//! The lock store port and its adapters.
//!
//! A lock is a lease on a resource: one holder (identified by the hash of its token), an owner
//! label (who took it, for "held by me"), a TTL after which it is gone by itself, and a
//! **fencing token** that grows with every acquisition of the resource. A holder's writes carry
//! its fencing token and the database refuses a token older than one it has already seen, so a
//! holder whose lease ran out mid-request cannot overwrite the next holder's work.
//!
//! Fencing tokens are `max(previous + 1, server time in microseconds)`: strictly increasing
//! while the counter lives, and still increasing after it expired (the clock has moved on), so
//! the counter can carry a TTL like every other key.

mod memory;
mod redis;

use std::time::Duration;

use app_redis::RedisError;
use async_trait::async_trait;
use shaku::Interface;

pub use memory::MemoryLockStore;
pub use redis::RedisLockStore;

/// A resource's lock as seen by one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nobody holds the lock.
    Free,
    /// The token holds the lock.
    Held {
        /// The lease's fencing token.
        fencing: u64,
        /// Time left on the lease.
        ttl: Duration,
    },
    /// Another token holds it.
    HeldByOther {
        /// Time left on the other lease.
        ttl: Duration,
    },
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The owner label given at acquisition (a user id).
    pub owner: String,
    /// The lease's fencing token.
    pub fencing: u64,
    /// Time left on the lease.
    pub ttl: Duration,
}

/// Where locks live.
#[async_trait]
pub trait LockStore: Interface {
    /// Takes the lock for `ttl` unless it is held; returns the new fencing token, or `Err` of
    /// the holder's remaining time when it is held.
    async fn acquire(
        &self,
        resource: &str,
        token_hash: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Result<u64, Duration>, RedisError>;

    /// The lock as seen by `token_hash`.
    async fn check(&self, resource: &str, token_hash: &str) -> Result<Check, RedisError>;

    /// Renews the lease to `ttl` if `token_hash` holds it; the lock as seen by the token.
    async fn extend(&self, resource: &str, token_hash: &str, ttl: Duration) -> Result<Check, RedisError>;

    /// Releases the lock if `token_hash` holds it; whether it did.
    async fn release(&self, resource: &str, token_hash: &str) -> Result<bool, RedisError>;

    /// The current holder, if any.
    async fn holder(&self, resource: &str) -> Result<Option<Holder>, RedisError>;
}

/// How long the fencing counter outlives the last acquisition (it is time-seeded, so its
/// expiry only costs the `+ 1` steps, never monotonicity).
pub(crate) const FENCE_TTL: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
mod tests;
