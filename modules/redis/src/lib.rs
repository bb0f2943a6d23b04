//! The RedisModule: the one managed connection to Redis (single node, Sentinel or Cluster) and
//! the shared-state ports built on it.
//!
//! - [`Redis`]: the client. Connects in the background and reconnects forever (capped
//!   exponential backoff with jitter); a finite command timeout, a bounded command buffer and
//!   unresponsive-connection detection turn a frozen Redis into fast errors; a separate
//!   subscriber connection resubscribes after reconnects; Lua scripts run by EVALSHA with NOSCRIPT
//!   reload; every key goes through [`Redis::key`] and carries the configured prefix.
//! - [`SharedState`]: the backend chosen at start-up, Redis or in-process memory.
//! - Ports with a Redis and a memory adapter, each passing one contract suite:
//!   [`KvStore`], [`PubSub`], and the health probe [`RedisHealth`].
//!
//! fred (the client library) never leaks out of this crate, so it could be swapped.
//! Depends on `core` only.

mod batch;
mod blocking;
mod client;
mod config;
mod error;
pub mod kv;
mod module;
mod probe;
pub mod pubsub;
mod rebase;
mod scripts;
mod state;
/// Test support (feature `testing`): clients on real test servers, for the contract suites of
/// this crate and of the modules whose ports have Redis adapters.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use batch::Eval;
pub use blocking::{BlockingConnection, StreamEntry};
pub use client::{Arg, Redis, Reply};
pub use config::RedisConfig;
pub use error::RedisError;
pub use kv::{KvStore, MemoryKvStore, RedisKvStore};
pub use module::RedisModule;
pub use probe::{MemoryHealth, RedisHealth, RedisInfo, RedisProbe, RedisServerHealth};
pub use pubsub::{MemoryPubSub, PubSub, RedisPubSub, Subscription};
pub use scripts::Script;
pub use state::{KvStoreBinding, PubSubBinding, RedisHealthBinding, SharedState};
