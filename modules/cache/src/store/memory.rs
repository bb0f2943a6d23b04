//! The in-process [`CacheStore`]: the same semantics as the Redis adapter, for one instance.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use app_redis::RedisError;
use async_trait::async_trait;

use super::{CacheStore, EntryKey, Read};

struct Entry {
    generation: u64,
    value: Vec<u8>,
    expires_at: Instant,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    generations: HashMap<String, (u64, Instant)>,
    locks: HashMap<String, (String, Instant)>,
    tags: HashMap<String, (HashSet<String>, Instant)>,
}

impl State {
    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.expires_at > now);
        self.generations.retain(|_, (_, at)| *at > now);
        self.locks.retain(|_, (_, at)| *at > now);
        self.tags.retain(|_, (_, at)| *at > now);
    }

    /// The live generation of a scope, if it has one.
    fn generation(&self, key: &str, now: Instant) -> Option<u64> {
        self.generations.get(key).filter(|(_, at)| *at > now).map(|(g, _)| *g)
    }

    /// The scope's generation, made from the clock when it has none; its TTL renewed.
    fn generation_or_fresh(&mut self, key: &str, now: Instant, ttl: Duration) -> u64 {
        let g = self.generation(key, now).unwrap_or_else(clock_micros);
        self.generations.insert(key.to_owned(), (g, now + ttl));
        g
    }
}

/// The wall clock in microseconds: where a scope's generations start.
fn clock_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or_default()
}

/// Cache entries inside this process.
#[derive(Default)]
pub struct MemoryCacheStore {
    state: Mutex<State>,
    ops: AtomicU64,
}

impl MemoryCacheStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Expired entries are skipped on access and swept every 1024 operations, so memory stays
        // bounded by the live entries without a background task.
        if self.ops.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            state.sweep(now);
        }
        f(&mut state, now)
    }
}

fn entry_key(key: EntryKey<'_>) -> String {
    format!("{}:{{{}}}:{}", key.namespace, key.scope, key.item)
}

fn generation_key(namespace: &str, scope: &str) -> String {
    format!("{namespace}:{{{scope}}}")
}

#[async_trait]
impl CacheStore for MemoryCacheStore {
    async fn read(&self, key: EntryKey<'_>) -> Result<Read, RedisError> {
        let (entry, generation) = (entry_key(key), generation_key(key.namespace, key.scope));
        Ok(self.with(|state, now| {
            let generation = match state.generation(&generation, now) {
                Some(g) => g,
                None => state.generation_or_fresh(&generation, now, key.generation_ttl),
            };
            let value = state
                .entries
                .get(&entry)
                .filter(|e| e.expires_at > now && e.generation == generation)
                .map(|e| e.value.clone());
            Read { generation, value }
        }))
    }

    async fn write(
        &self,
        key: EntryKey<'_>,
        value: &[u8],
        ttl: Duration,
        if_generation: Option<u64>,
    ) -> Result<bool, RedisError> {
        let (entry, generation) = (entry_key(key), generation_key(key.namespace, key.scope));
        Ok(self.with(|state, now| {
            let current = match (state.generation(&generation, now), if_generation) {
                (None, Some(_)) => return false,
                (Some(g), Some(expected)) if g != expected => return false,
                _ => state.generation_or_fresh(&generation, now, key.generation_ttl),
            };
            let expires_at = now + ttl;
            state.entries.insert(entry, Entry { generation: current, value: value.to_vec(), expires_at });
            true
        }))
    }

    async fn delete(&self, key: EntryKey<'_>) -> Result<bool, RedisError> {
        let entry = entry_key(key);
        Ok(self.with(|state, now| state.entries.remove(&entry).is_some_and(|e| e.expires_at > now)))
    }

    async fn bump(&self, namespace: &str, scope: &str, ttl: Duration, _: Option<&str>) -> Result<u64, RedisError> {
        let generation = generation_key(namespace, scope);
        Ok(self.with(|state, now| {
            let next = (state.generation(&generation, now).unwrap_or(0) + 1).max(clock_micros());
            state.generations.insert(generation, (next, now + ttl));
            next
        }))
    }

    async fn try_lock(
        &self,
        key: EntryKey<'_>,
        generation: u64,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        let lock = format!("{}~fill:{generation}", entry_key(key));
        Ok(self.with(|state, now| {
            if state.locks.get(&lock).is_some_and(|(_, at)| *at > now) {
                return false;
            }
            state.locks.insert(lock, (token.to_owned(), now + ttl));
            true
        }))
    }

    async fn unlock(&self, key: EntryKey<'_>, generation: u64, token: &str) -> Result<(), RedisError> {
        let lock = format!("{}~fill:{generation}", entry_key(key));
        self.with(|state, _| {
            if state.locks.get(&lock).is_some_and(|(held, _)| held == token) {
                state.locks.remove(&lock);
            }
        });
        Ok(())
    }

    async fn tag(&self, tag: &str, key: EntryKey<'_>, ttl: Duration) -> Result<(), RedisError> {
        let entry = entry_key(key);
        self.with(|state, now| {
            let (members, expires_at) = state.tags.entry(tag.to_owned()).or_insert_with(|| (HashSet::new(), now));
            if *expires_at <= now {
                members.clear();
            }
            members.insert(entry);
            *expires_at = (*expires_at).max(now + ttl);
        });
        Ok(())
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<u64, RedisError> {
        Ok(self.with(|state, now| {
            let Some((members, expires_at)) = state.tags.remove(tag) else { return 0 };
            if expires_at <= now {
                return 0;
            }
            let live = |e: &Entry| e.expires_at > now;
            members.iter().filter(|m| state.entries.remove(*m).is_some_and(|e| live(&e))).count() as u64
        }))
    }

    fn is_available(&self) -> bool {
        true
    }
}
