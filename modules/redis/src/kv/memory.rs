//! The in-process [`KvStore`].

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{KvStore, MAX_TTL};
use crate::RedisError;

struct Entry {
    value: Vec<u8>,
    expires_at: Instant,
}

/// Key-value storage inside this process (one instance only).
#[derive(Default)]
pub struct MemoryKvStore {
    entries: Mutex<HashMap<String, Entry>>,
    writes: AtomicU64,
}

impl MemoryKvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> R) -> R {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Expired entries are dropped lazily on access and swept every 1024 writes, so memory
        // stays bounded by the live keys without a background task.
        if self.writes.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            entries.retain(|_, e| e.expires_at > now);
        }
        f(&mut entries, now)
    }
}

fn live<'a>(entries: &'a mut HashMap<String, Entry>, key: &str, now: Instant) -> Option<&'a mut Entry> {
    if entries.get(key).is_some_and(|e| e.expires_at <= now) {
        entries.remove(key);
    }
    entries.get_mut(key)
}

#[async_trait]
impl KvStore for MemoryKvStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RedisError> {
        Ok(self.with(|entries, now| live(entries, key, now).map(|e| e.value.clone())))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisError> {
        self.with(|entries, now| {
            entries.insert(key.to_owned(), Entry { value: value.to_vec(), expires_at: now + ttl.min(MAX_TTL) });
        });
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, RedisError> {
        Ok(self.with(|entries, now| {
            if live(entries, key, now).is_some() {
                return false;
            }
            entries.insert(key.to_owned(), Entry { value: value.to_vec(), expires_at: now + ttl.min(MAX_TTL) });
            true
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, RedisError> {
        Ok(self.with(|entries, now| live(entries, key, now).is_some() && entries.remove(key).is_some()))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, RedisError> {
        Ok(self.with(|entries, now| live(entries, key, now).map(|e| e.expires_at - now)))
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, RedisError> {
        self.with(|entries, now| {
            let not_integer = || RedisError::Command("value is not an integer or out of range".into());
            match live(entries, key, now) {
                Some(entry) => {
                    let current: i64 =
                        std::str::from_utf8(&entry.value).ok().and_then(|s| s.parse().ok()).ok_or_else(not_integer)?;
                    let next = current.checked_add(by).ok_or_else(not_integer)?;
                    entry.value = next.to_string().into_bytes();
                    Ok(next)
                }
                None => {
                    entries.insert(
                        key.to_owned(),
                        Entry { value: by.to_string().into_bytes(), expires_at: now + ttl.min(MAX_TTL) },
                    );
                    Ok(by)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::kv::contract;

    async fn memory_store() -> Arc<dyn KvStore> {
        Arc::new(MemoryKvStore::new())
    }

    async fn redis_store() -> Arc<dyn KvStore> {
        Arc::new(crate::kv::RedisKvStore::new(crate::testing::redis().await))
    }

    async fn redis_cluster_store() -> Arc<dyn KvStore> {
        Arc::new(crate::kv::RedisKvStore::new(crate::testing::redis_cluster().await))
    }

    app_core::contract_tests! {
        suite = contract,
        adapters = { memory => memory_store, redis => redis_store, redis_cluster => redis_cluster_store },
        tests = [
            get_returns_what_set_stored,
            missing_keys_read_as_none,
            a_huge_ttl_is_capped_not_an_error,
            values_expire_after_their_ttl,
            set_if_absent_writes_only_once,
            set_if_absent_has_exactly_one_winner_under_concurrency,
            delete_reports_whether_the_key_existed,
            every_key_carries_its_ttl,
            increment_counts_and_keeps_the_first_expiry,
            increment_is_exact_under_concurrency,
            incrementing_a_non_number_fails,
        ],
    }
}
