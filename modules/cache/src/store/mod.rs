//! The cache store port and its adapters.
//!
//! Entries live in *scopes* (everything of one user, say). Each scope has a
//! generation counter; an entry remembers the generation it was written under and reads as
//! absent once the scope has moved on, so invalidating a whole scope is one O(1) bump,
//! cluster-safe (the counter and the entries share the scope's hash tag), and a reader that
//! raced a writer can only store under a dead generation. Writes are conditional on the
//! generation the reader saw, so such a reader usually stores nothing at all.
//!
//! Generations are seeded from the server clock (microseconds) and only grow: a counter that
//! expired or was evicted comes back at a new value no entry was ever stored under, so it can
//! never make a dead entry current again. Every write renews the counter's TTL, so it outlives
//! the entries stored under it.

mod memory;
mod redis;

use std::time::Duration;

use app_redis::RedisError;
use async_trait::async_trait;
use shaku::Interface;

pub use memory::MemoryCacheStore;
pub use redis::RedisCacheStore;

/// Where an entry lives: `cache:<namespace>:{<scope>}:<item>` on Redis, with the scope as the
/// hash tag so the entry, its generation and its fill lock share one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryKey<'a> {
    /// The namespace (`user`, `lib`), with its schema version (`user.v1`).
    pub namespace: &'a str,
    /// The scope within the namespace (`u:<uuid>`): the unit of invalidation.
    pub scope: &'a str,
    /// The entry within the scope (`profile`, `page:<hash>`).
    pub item: &'a str,
    /// How long the scope's generation counter lives after its last use: longer than any entry.
    pub generation_ttl: Duration,
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The scope's current generation (made, from the clock, when the scope has none).
    pub generation: u64,
    /// The entry, when present and written under the current generation.
    pub value: Option<Vec<u8>>,
}

/// Where cache entries live.
#[async_trait]
pub trait CacheStore: Interface {
    /// The entry and its scope's generation, in one round trip (a scope without a counter gets
    /// one).
    async fn read(&self, key: EntryKey<'_>) -> Result<Read, RedisError>;

    /// Stores `value` for `ttl` under the scope's current generation. With `if_generation`,
    /// only when the scope is still at that generation (the one the reader saw before loading);
    /// returns whether it was stored.
    async fn write(
        &self,
        key: EntryKey<'_>,
        value: &[u8],
        ttl: Duration,
        if_generation: Option<u64>,
    ) -> Result<bool, RedisError>;

    /// Removes one entry; whether it existed.
    async fn delete(&self, key: EntryKey<'_>) -> Result<bool, RedisError>;

    /// Moves the scope to a new generation, so every entry in it reads as absent; returns the
    /// new generation. The counter expires `ttl` after its last use. `version`: the key of the
    /// scope's user's version (`app_core::versions`), moved on in the same step, so copies of
    /// the scope's entries kept in process go on every instance (a user's scope on the
    /// shared-state Redis; other adapters are never handed one).
    async fn bump(&self, namespace: &str, scope: &str, ttl: Duration, version: Option<&str>)
    -> Result<u64, RedisError>;

    /// Takes the fill lock of the entry at `generation` for `ttl` unless another filler holds it
    /// (a fill for a newer generation never waits for an older one).
    async fn try_lock(
        &self,
        key: EntryKey<'_>,
        generation: u64,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisError>;

    /// Releases the fill lock if `token` still holds it.
    async fn unlock(&self, key: EntryKey<'_>, generation: u64, token: &str) -> Result<(), RedisError>;

    /// Adds the entry to the tag set `tag` (which expires `ttl` after its last addition).
    async fn tag(&self, tag: &str, key: EntryKey<'_>, ttl: Duration) -> Result<(), RedisError>;

    /// Deletes every entry tagged `tag`, and the tag; returns how many entries were deleted.
    async fn invalidate_tag(&self, tag: &str) -> Result<u64, RedisError>;

    /// Whether the store can be reached right now (checked before each use, so an outage
    /// costs nothing instead of a command timeout per read).
    fn is_available(&self) -> bool;
}

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
mod tests;
