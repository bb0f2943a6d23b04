//! The rate-limit store port and its adapters: GCRA (generic cell rate algorithm) state, one
//! integer per (policy, subject).
//!
//! GCRA admits a request when the subject's debt (theoretical arrival time minus now, after
//! adding one emission interval of `window / limit`) stays within `limit` intervals: a burst of
//! `limit` requests passes, then one per interval. Memory is O(1) per subject, the decision is
//! atomic (one Lua script, Redis `TIME`), and there is no doubling at window boundaries.
//!
//! The state counts in whole microseconds: the theoretical arrival time, or minus the end of a
//! block while one runs (a block replaces the count). The interval is the window divided by the
//! limit, rounded up to a whole microsecond (the window is then up to `limit` µs longer, less
//! than a thousandth of it, as a policy allows at most one request per millisecond): so a burst
//! of exactly `limit` passes whatever the numbers, and Redis can count it with `INCRBY`.

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

impl Limit {
    /// The emission interval in µs: the window divided by the limit, rounded up.
    pub(crate) fn interval_us(&self) -> i64 {
        (self.window_ms.saturating_mul(1000)).div_ceil(u64::from(self.limit.max(1))) as i64
    }

    /// The most debt a subject may carry, in µs: `limit` intervals (the window, rounded up).
    pub(crate) fn span_us(&self) -> i64 {
        self.interval_us() * i64::from(self.limit.max(1))
    }
}

/// A limit in the form its store counts it, made once per policy by
/// [`RateLimitStore::compile`]: the Redis adapter writes the numbers into a script of their
/// own, so counting a request sends Redis nothing to parse but the key.
#[derive(Debug, Clone)]
pub struct CompiledLimit {
    /// The numbers.
    pub limit: Limit,
    /// The Redis adapter's form (`None`: the store counts with `limit`).
    redis: Option<RedisForm>,
}

/// A limit as the Redis adapter counts it.
#[derive(Debug, Clone)]
struct RedisForm {
    /// The script with the numbers written in.
    script: app_redis::Script,
    /// The same, then a `GET` of its second key (a user's version), made on first use.
    reading: std::sync::Arc<std::sync::OnceLock<app_redis::Script>>,
    /// The source the `reading` script is made from (the header and the count).
    source: std::sync::Arc<str>,
    /// What follows the key (see [`RedisRateLimitStore`]), made once.
    suffix: String,
}

impl From<Limit> for CompiledLimit {
    fn from(limit: Limit) -> Self {
        Self { limit, redis: None }
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

    /// As [`hit`](Self::hit), and reads the integer at `read` (a key in `key`'s hash tag) in the
    /// same round trip: `None` where the store cannot, `Some(None)` when the key is absent.
    async fn hit_reading(
        &self,
        key: &str,
        limit: &CompiledLimit,
        read: &str,
    ) -> Result<(Outcome, Option<Option<i64>>), RedisError> {
        let _ = read;
        Ok((self.hit(key, limit).await?, None))
    }

    /// The current state under `key`, counting nothing (`allowed`: whether a request now would pass).
    async fn peek(&self, key: &str, limit: &Limit) -> Result<Outcome, RedisError>;

    /// Forgets `key`'s state and block under `limit`; whether there was any.
    async fn reset(&self, key: &str, limit: &Limit) -> Result<bool, RedisError>;

    /// Takes back one request that [`hit`](Self::hit) admitted under `key` (the guard refunds
    /// the policies that admitted a request another policy refused, so a refused request is
    /// counted by none). Changes nothing while a block runs or when there is no state.
    async fn refund(&self, key: &str, limit: &Limit) -> Result<(), RedisError>;
}

/// The decision on `state` (as the module docs describe it; 0: none) at `now` (µs). With
/// `write`, the request is counted: the result carries the new state when it changes (an
/// admitted request, or a refusal that starts the block). Without, nothing changes and
/// `remaining` / `reset_ms` describe the present. The Redis scripts compute exactly this.
pub(crate) fn decide(state: i64, now: i64, limit: &Limit, write: bool) -> (Outcome, Option<i64>) {
    let (interval, span) = (limit.interval_us(), limit.span_us());
    if -state > now {
        let left = ms_ceil(-state - now);
        return (Outcome { allowed: false, remaining: 0, retry_after_ms: left, reset_ms: left, blocked: true }, None);
    }
    let tat = state.max(now);
    let debt = tat + interval - now;
    if debt > span {
        if write && limit.block_ms > 0 {
            let block = limit.block_ms;
            let outcome =
                Outcome { allowed: false, remaining: 0, retry_after_ms: block, reset_ms: block, blocked: true };
            return (outcome, Some(-(now + block as i64 * 1000)));
        }
        let retry = ms_ceil(debt - span).max(1);
        let outcome = Outcome {
            allowed: false,
            remaining: 0,
            retry_after_ms: retry,
            reset_ms: ms_ceil(tat - now),
            blocked: false,
        };
        return (outcome, None);
    }
    if write { (admitted(debt, limit), Some(tat + interval)) } else { (admitted(tat - now, limit), None) }
}

/// The outcome of an admitted request that leaves `debt` µs of the allowance spent (the
/// arrival time ahead of now): what is left of the allowance, and when it is whole again.
pub(crate) fn admitted(debt: i64, limit: &Limit) -> Outcome {
    let remaining = (limit.span_us() - debt).max(0) / limit.interval_us();
    Outcome {
        allowed: true,
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        retry_after_ms: 0,
        reset_ms: ms_ceil(debt),
        blocked: false,
    }
}

/// The state after taking back one admitted request: the arrival time one interval earlier
/// (`None`: nothing to take back, as for a block or no state).
pub(crate) fn refunded(state: i64, limit: &Limit) -> Option<i64> {
    (state > 0).then(|| state - limit.interval_us())
}

/// Microseconds as whole milliseconds, rounded up.
fn ms_ceil(us: i64) -> u64 {
    (us.max(0) as u64).div_ceil(1000)
}

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
mod tests;
