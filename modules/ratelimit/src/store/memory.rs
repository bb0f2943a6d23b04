//! The memory adapter: the same decisions in process, for a single instance.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use app_redis::RedisError;
use async_trait::async_trait;

use super::{CompiledLimit, Limit, Outcome, RateLimitStore, decide};

#[derive(Default)]
struct State {
    /// key -> (theoretical arrival time, ms)
    tats: HashMap<String, f64>,
    /// key -> block end, ms
    blocks: HashMap<String, f64>,
}

/// Rate-limit state in this process (not shared between instances).
#[derive(Default)]
pub struct MemoryRateLimitStore {
    state: Mutex<State>,
    writes: AtomicU64,
}

impl MemoryRateLimitStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn decide(&self, key: &str, limit: &Limit, write: bool) -> Outcome {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or_default();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Expired entries of everyone are swept now and then, so the maps cannot grow without bound.
        if write && self.writes.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            state.tats.retain(|_, tat| *tat > now);
            state.blocks.retain(|_, until| *until > now);
        }
        let blocked_ms = state.blocks.get(key).map_or(0, |until| (until - now).ceil().max(0.0) as u64);
        let tat = state.tats.get(key).copied().unwrap_or(0.0);
        let (outcome, new_tat) = decide(tat, blocked_ms, now, limit, write);
        if let Some(tat) = new_tat {
            state.tats.insert(key.to_owned(), tat);
        } else if write && outcome.blocked && blocked_ms == 0 {
            // The block replaces the count: once it ends, the subject starts afresh.
            state.blocks.insert(key.to_owned(), now + limit.block_ms as f64);
            state.tats.remove(key);
        }
        outcome
    }
}

#[async_trait]
impl RateLimitStore for MemoryRateLimitStore {
    async fn hit(&self, key: &str, limit: &CompiledLimit) -> Result<Outcome, RedisError> {
        Ok(self.decide(key, &limit.limit, true))
    }

    async fn peek(&self, key: &str, limit: &Limit) -> Result<Outcome, RedisError> {
        Ok(self.decide(key, limit, false))
    }

    async fn reset(&self, key: &str) -> Result<bool, RedisError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let a = state.tats.remove(key).is_some();
        let b = state.blocks.remove(key).is_some();
        Ok(a || b)
    }
}
