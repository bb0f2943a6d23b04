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

use super::{CompiledLimit, Limit, Outcome, RateLimitStore, decide, refunded};

/// Rate-limit state in this process (not shared between instances): key -> state, in the form
/// the Redis adapter keeps it (see [`super`]).
#[derive(Default)]
pub struct MemoryRateLimitStore {
    states: Mutex<HashMap<String, i64>>,
    writes: AtomicU64,
}

impl MemoryRateLimitStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn decide(&self, key: &str, limit: &Limit, write: bool) -> Outcome {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        // Spent states of everyone (an arrival time or a block's end in the past) are swept now
        // and then, so the map cannot grow without bound.
        if write && self.writes.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            states.retain(|_, state| state.abs() > now);
        }
        let (outcome, state) = decide(states.get(key).copied().unwrap_or(0), now, limit, write);
        if let Some(state) = state {
            states.insert(key.to_owned(), state);
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

    async fn reset(&self, key: &str, _limit: &Limit) -> Result<bool, RedisError> {
        Ok(self.states.lock().unwrap_or_else(|p| p.into_inner()).remove(key).is_some())
    }

    async fn refund(&self, key: &str, limit: &Limit) -> Result<(), RedisError> {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = states.get_mut(key)
            && let Some(back) = refunded(*state, limit)
        {
            *state = back;
        }
        Ok(())
    }
}
