//! The in-process [`LockStore`]: the same semantics as the Redis adapter, for one instance.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use app_redis::RedisError;
use async_trait::async_trait;

use super::{Check, FENCE_TTL, Holder, LockStore};

struct Lease {
    token_hash: String,
    owner: String,
    fencing: u64,
    expires_at: Instant,
}

#[derive(Default)]
struct State {
    leases: HashMap<String, Lease>,
    fences: HashMap<String, (u64, Instant)>,
}

/// Locks inside this process.
#[derive(Default)]
pub struct MemoryLockStore {
    state: Mutex<State>,
    ops: AtomicU64,
}

impl MemoryLockStore {
    /// No locks held.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, resource: &str, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Expired leases are dropped on access and swept every 1024 operations.
        if self.ops.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            state.leases.retain(|_, l| l.expires_at > now);
            state.fences.retain(|_, (_, at)| *at > now);
        } else {
            if state.leases.get(resource).is_some_and(|l| l.expires_at <= now) {
                state.leases.remove(resource);
            }
            if state.fences.get(resource).is_some_and(|(_, at)| *at <= now) {
                state.fences.remove(resource);
            }
        }
        f(&mut state, now)
    }
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or_default()
}

#[async_trait]
impl LockStore for MemoryLockStore {
    async fn acquire(
        &self,
        resource: &str,
        token_hash: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Result<u64, Duration>, RedisError> {
        Ok(self.with(resource, |state, now| {
            if let Some(lease) = state.leases.get(resource) {
                return Err(lease.expires_at - now);
            }
            let previous = state.fences.get(resource).map_or(0, |(f, _)| *f);
            let fencing = (previous + 1).max(now_micros());
            state.fences.insert(resource.to_owned(), (fencing, now + FENCE_TTL));
            let lease =
                Lease { token_hash: token_hash.to_owned(), owner: owner.to_owned(), fencing, expires_at: now + ttl };
            state.leases.insert(resource.to_owned(), lease);
            Ok(fencing)
        }))
    }

    async fn check(&self, resource: &str, token_hash: &str) -> Result<Check, RedisError> {
        Ok(self.with(resource, |state, now| match state.leases.get(resource) {
            None => Check::Free,
            Some(l) if l.token_hash == token_hash => Check::Held { fencing: l.fencing, ttl: l.expires_at - now },
            Some(l) => Check::HeldByOther { ttl: l.expires_at - now },
        }))
    }

    async fn extend(&self, resource: &str, token_hash: &str, ttl: Duration) -> Result<Check, RedisError> {
        Ok(self.with(resource, |state, now| match state.leases.get_mut(resource) {
            None => Check::Free,
            Some(l) if l.token_hash == token_hash => {
                l.expires_at = now + ttl;
                Check::Held { fencing: l.fencing, ttl }
            }
            Some(l) => Check::HeldByOther { ttl: l.expires_at - now },
        }))
    }

    async fn release(&self, resource: &str, token_hash: &str) -> Result<bool, RedisError> {
        Ok(self.with(resource, |state, _| {
            if state.leases.get(resource).is_some_and(|l| l.token_hash == token_hash) {
                state.leases.remove(resource);
                true
            } else {
                false
            }
        }))
    }

    async fn holder(&self, resource: &str) -> Result<Option<Holder>, RedisError> {
        Ok(self.with(resource, |state, now| {
            state.leases.get(resource).map(|l| Holder {
                owner: l.owner.clone(),
                fencing: l.fencing,
                ttl: l.expires_at - now,
            })
        }))
    }
}
