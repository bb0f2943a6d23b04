//! The Redis adapter: one Lua script per decision (one round trip, atomic, server clock).

use app_redis::{Arg, Redis, RedisError, Reply, Script};
use async_trait::async_trait;

use super::{Limit, Outcome, RateLimitStore};

/// KEYS: the subject's key. ARGV: limit, window ms, block ms, write (1: count the request, 0:
/// peek). The key holds the theoretical arrival time, or `blocked` while a block runs (with the
/// block's TTL), so the hot path is TIME, GET and SET. The same arithmetic as `decide`.
///
/// The hot path (a request counted and admitted) returns one integer, `remaining * 2^33 +
/// reset ms`, instead of a table: building and converting a table costs Redis more than the
/// rest of the step. Every other outcome returns {allowed, remaining, retry ms, reset ms, blocked}.
/// (Lua coerces the numeric strings TIME and ARGV hold, so they need no `tonumber`.)
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local limit, window, block = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
local interval = window / limit
local stored = redis.call('GET', KEYS[1])
if stored == 'blocked' then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return {0, 0, left, left, 1} end
  stored = false
end
local tat = now
if stored then tat = stored + 0; if tat < now then tat = now end end
local new_tat = tat + interval
if new_tat - now > window + 0.001 then
  local retry = math.max(1, math.ceil(new_tat - now - window))
  if ARGV[4] == '1' and block > 0 then
    -- The block replaces the count: once it ends, the subject starts afresh.
    redis.call('SET', KEYS[1], 'blocked', 'PX', block)
    return {0, 0, block, block, 1}
  end
  return {0, 0, retry, math.ceil(tat - now), 0}
end
if ARGV[4] ~= '1' then
  return {1, math.floor((window - (tat - now)) / interval + 0.001), 0, math.ceil(tat - now), 0}
end
local debt = math.ceil(new_tat - now)
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', debt)
return math.floor((window - (new_tat - now)) / interval + 0.001) * 8589934592 + debt
"#;

/// The factor the hot path's packed reply multiplies `remaining` by (2^33: room for a reset of
/// three months in milliseconds below it).
const PACK: i64 = 1 << 33;

const RESET: &str = "return redis.call('DEL', KEYS[1])";

/// Rate-limit state in Redis, shared by every instance.
pub struct RedisRateLimitStore {
    redis: Redis,
    gcra: Script,
    reset: Script,
}

impl RedisRateLimitStore {
    /// A store on `redis`.
    pub fn new(redis: Redis) -> Self {
        let gcra = redis.register_script("ratelimit_gcra", GCRA);
        let reset = redis.register_script("ratelimit_reset", RESET);
        Self { redis, gcra, reset }
    }

    fn keys(&self, key: &str) -> Vec<String> {
        vec![self.redis.key(key)]
    }

    async fn run(&self, key: &str, limit: &Limit, write: bool) -> Result<Outcome, RedisError> {
        let args = vec![
            Arg::Int(i64::from(limit.limit)),
            Arg::Int(limit.window_ms as i64),
            Arg::Int(limit.block_ms as i64),
            Arg::from(if write { "1" } else { "0" }),
        ];
        let reply = self.redis.eval(&self.gcra, self.keys(key), args).await?;
        if let Reply::Int(packed) = reply {
            let (remaining, reset_ms) = (packed / PACK, packed % PACK);
            return Ok(Outcome {
                allowed: true,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                retry_after_ms: 0,
                reset_ms: reset_ms.max(0) as u64,
                blocked: false,
            });
        }
        let reply = reply.into_array();
        let int = |i: usize| {
            reply
                .get(i)
                .and_then(Reply::as_i64)
                .ok_or_else(|| RedisError::Command("unexpected reply from the rate-limit script".into()))
        };
        Ok(Outcome {
            allowed: int(0)? == 1,
            remaining: u32::try_from(int(1)?.max(0)).unwrap_or(u32::MAX),
            retry_after_ms: int(2)?.max(0) as u64,
            reset_ms: int(3)?.max(0) as u64,
            blocked: int(4)? == 1,
        })
    }
}

#[async_trait]
impl RateLimitStore for RedisRateLimitStore {
    async fn hit(&self, key: &str, limit: &Limit) -> Result<Outcome, RedisError> {
        self.run(key, limit, true).await
    }

    async fn peek(&self, key: &str, limit: &Limit) -> Result<Outcome, RedisError> {
        self.run(key, limit, false).await
    }

    async fn reset(&self, key: &str) -> Result<bool, RedisError> {
        let deleted = self.redis.eval(&self.reset, self.keys(key), Vec::new()).await?;
        Ok(deleted.as_i64().unwrap_or(0) > 0)
    }
}
