//! The RedisModule: the one managed connection to Redis (single node, Sentinel or Cluster) and
//! the shared-state ports built on it.
//!
//! - [`Redis`]: the client. Connects in the background and reconnects forever (capped
//!   exponential backoff with jitter); a finite command timeout, a bounded command buffer and
//!   unresponsive-connection detection turn a frozen Redis into fast errors; a separate
//!   subscriber connection resubscribes after reconnects; Lua scripts run by EVALSHA with NOSCRIPT
//!   reload; every key goes through [`Redis::key`] and carries the configured prefix.
//! - [`SharedState`]: the backend chosen at start-up, Redis or in-process memory, which
//!   [`RedisModule`] provides to the modules that import it (they bind their stores' adapters to
//!   it with [`port_binding!`]).
//! - [`PubSub`], with a Redis and a memory adapter passing one contract suite, and the `redis`
//!   readiness check.
//!
//! fred (the client crate) never leaks out of this crate, so it could be swapped.
//! Depends on `core` only.

mod batch;
mod blocking;
mod client;
mod config;
mod error;
mod lane;
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
mod versions;

pub use batch::Eval;
pub use blocking::{BlockingConnection, StreamEntry};
pub use client::{Arg, Redis, Reply};
pub use config::RedisConfig;
pub use error::RedisError;
pub use module::RedisModule;
pub use probe::{RedisCheck, RedisInfo};
pub use pubsub::{MemoryPubSub, PubSub, RedisPubSub, Subscription};
pub use scripts::Script;
pub use state::{Bound, SharedState};
