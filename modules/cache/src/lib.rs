//! The CacheModule: cache-aside over any loader, shared by every instance.
//!
//! - [`CacheManager`]: typed get / set (TTL plus jitter) / delete in [`Namespace`]s;
//!   [`get_or_load`](CacheManager::get_or_load), which coalesces concurrent misses of one entry
//!   inside the process and, through a short fill lock, across instances; invalidation of a
//!   whole scope by one generation bump (O(1), cluster-safe, race-free: a reader that raced a
//!   writer stores under a dead generation, or not at all); tag sets for ad-hoc groups;
//!   hit / miss / load counters per namespace.
//! - The [`CacheStore`](store::CacheStore) port with a Redis adapter (Lua, one round trip per
//!   read) and a memory adapter, passing one contract suite.
//! - `CacheApi`: `GET /api/v1/admin/cache`.
//!
//! A cache failure never fails a request: reads fall back to the loader, writes are skipped,
//! and an outage is logged once. Depends on `core` and `redis` only; the modules whose reads it
//! caches import it.

mod api;
mod config;
mod flight;
mod manager;
mod module;
pub mod store;

pub use api::CacheApi;
pub use config::CacheConfig;
pub use manager::{CacheManager, CacheMetrics, Namespace, NamespaceStats, UserScope};
pub use module::{CacheContainer, CacheManagerComponent, CacheModule, CacheParams, CacheStoreBinding};

#[cfg(test)]
mod tests;
