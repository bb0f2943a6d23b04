//! The LockModule: token locks (leases) with fencing tokens, shared by every instance.
//!
//! [`Locks`] hands out a random token per acquisition (only its SHA-256 is stored) and a
//! fencing token that grows with every acquisition of a resource; extend and release are
//! compare-and-set on the token; locks expire by themselves; [`Locks::with_lock`] wraps short
//! critical sections. Locks are advisory across a Redis failover (replication is
//! asynchronous), which is why writers pair them with the fencing token the database checks.
//!
//! The [`LockStore`](store::LockStore) port has a Redis adapter (Lua; the lock and its fencing
//! counter share the resource's hash tag) and a memory adapter, passing one contract suite.
//! Depends on `core` and `redis` only.

mod error;
mod module;
mod service;
pub mod store;

pub use error::{LOCK_NOT_HELD, LOCKED, LockError, LockNotHeld, Locked};
pub use module::{LockContainer, LockModule, LockStoreBinding, LocksComponent};
pub use service::{Lease, LockStatus, Locks};
