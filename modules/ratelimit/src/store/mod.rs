//! The rate-limit store port and its adapters: GCRA (generic cell rate algorithm) state, one
//! theoretical arrival time per (policy, subject), plus a block marker in the same hash slot.
//!
//! GCRA admits a request when the subject's debt (theoretical arrival time minus now, after
//! adding one emission interval of `window / limit`) stays within the window: a burst of
//! `limit` requests passes, then one per interval. Memory is O(1) per subject, the decision is
//! atomic (one Lua script, Redis `TIME`), and there is no doubling at window boundaries.

mod memory;
mod redis;

use app_redis::RedisError;
use async_trait::async_trait;
use shaku::Interface;

pub use memory::MemoryRateLimitStore;
pub use redis::RedisRateLimitStore;

/// A policy's numbers, as the store needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests per window (the burst).
    pub limit: u32,
    /// The window, in milliseconds.
    pub window_ms: u64,
    /// How long a subject that exceeded the limit is refused, in milliseconds (0: no block).
    /// The block replaces the count: when it ends, the subject has its whole allowance again.
    pub block_ms: u64,
}

/// A limit in the form its store counts it, made once per policy by
/// [`RateLimitStore::compile`]: the Redis adapter writes the numbers into a script of their
/// own, so counting a request sends Redis nothing to parse but the key.
#[derive(Debug, Clone)]
pub struct CompiledLimit {
    /// The numbers.
    pub limit: Limit,
    /// The Redis adapter's script for these numbers (`None`: the store counts with `limit`).
    script: Option<app_redis::Script>,
}

impl From<Limit> for CompiledLimit {
    fn from(limit: Limit) -> Self {
        Self { limit, script: None }
    }
}

/// What the store decided (or, for [`RateLimitStore::peek`], would decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Requests left after this one.
    pub remaining: u32,
    /// When refused: milliseconds until a retry can succeed.
    pub retry_after_ms: u64,
    /// Milliseconds until the allowance is whole again.
    pub reset_ms: u64,
    /// Whether the subject is serving a block.
    pub blocked: bool,
}

/// Where rate-limit state lives.
#[async_trait]
pub trait RateLimitStore: Interface {
    /// The store's form of `limit`, made once per policy (not per request).
    fn compile(&self, limit: Limit) -> CompiledLimit {
        limit.into()
    }

    /// Counts one request under `key` and decides.
    async fn hit(&self, key: &str, limit: &CompiledLimit) -> Result<Outcome, RedisError>;

    /// The current state under `key`, counting nothing (`allowed`: whether a request now would pass).
    async fn peek(&self, key: &str, limit: &Limit) -> Result<Outcome, RedisError>;

    /// Forgets `key`'s state and block; whether there was any.
    async fn reset(&self, key: &str) -> Result<bool, RedisError>;
}

/// The decision from a stored theoretical arrival time (`tat`, ms), the block's remaining
/// time (`blocked_ms`) and now (ms). With `write`, the request is counted: the result carries
/// the new `tat` when admitted, and a refusal starts the block. Without, nothing changes and
/// `remaining` / `reset_ms` describe the present. The Redis script computes exactly this.
pub(crate) fn decide(tat: f64, blocked_ms: u64, now: f64, limit: &Limit, write: bool) -> (Outcome, Option<f64>) {
    let window = limit.window_ms as f64;
    let interval = window / f64::from(limit.limit);
    let tat = tat.max(now);
    if blocked_ms > 0 {
        let reset = ((tat - now).ceil() as u64).max(blocked_ms);
        return (
            Outcome { allowed: false, remaining: 0, retry_after_ms: blocked_ms, reset_ms: reset, blocked: true },
            None,
        );
    }
    let new_tat = tat + interval;
    if new_tat - now > window + 0.001 {
        let natural = ((new_tat - now - window).ceil() as u64).max(1);
        let blocks = write && limit.block_ms > 0;
        let retry = if blocks { limit.block_ms } else { natural };
        let reset = if blocks { limit.block_ms } else { (tat - now).ceil() as u64 };
        return (
            Outcome { allowed: false, remaining: 0, retry_after_ms: retry, reset_ms: reset, blocked: blocks },
            None,
        );
    }
    let debt = if write { new_tat - now } else { tat - now };
    (admitted(debt, limit), write.then_some(new_tat))
}

/// The outcome of an admitted request that leaves `debt` ms of the window spent (the arrival
/// time ahead of now): what is left of the allowance, and when it is whole again.
pub(crate) fn admitted(debt: f64, limit: &Limit) -> Outcome {
    let window = limit.window_ms as f64;
    let interval = window / f64::from(limit.limit);
    let remaining = ((window - debt) / interval + 0.001).floor().max(0.0) as u32;
    Outcome { allowed: true, remaining, retry_after_ms: 0, reset_ms: debt.ceil().max(0.0) as u64, blocked: false }
}

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
mod tests;
