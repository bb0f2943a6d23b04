//! The Redis adapter: one Lua script per decision (one round trip, atomic, server clock).

use app_redis::{Arg, Redis, RedisError, Reply, Script};
use async_trait::async_trait;

use super::{CompiledLimit, Limit, Outcome, RateLimitStore, admitted};

/// KEYS: the subject's key. Ahead of it, a header defines `limit`, `window` and `block` (ms),
/// `write` (count the request, or only peek) and `ttl` (the state's TTL: the window and a
/// millisecond, as no debt is longer): from ARGV in the generic script, as constants in a
/// policy's compiled one. The key holds the theoretical arrival time, or `blocked` while a
/// block runs (with the block's TTL), so the hot path is TIME (shared with the session check
/// it travels with), GET and SET. The same arithmetic as `decide`.
///
/// The hot path (a request counted and admitted) returns one integer, the debt (the arrival
/// time ahead of now) in microseconds, instead of a table: building and converting a table
/// costs Redis more than the rest of the step, and the app derives the remaining allowance and
/// the reset from the debt as the memory adapter does ([`admitted`]), sparing Redis two more
/// calls into Lua's math library. Every other outcome returns {allowed, remaining, retry ms,
/// reset ms, blocked}.
/// The arrival time is stored as its 8 bytes (`struct.pack('<d')`): exact, and neither
/// written nor read as decimal text, which would cost Redis a `printf` and a `strtod` per
/// request (the dearest part of the step). State written as a decimal number (by earlier
/// versions) is still read. The TTL is a constant string rather than the debt, for the same
/// reason.
const GCRA: &str = r#"
local now = server_ms()
local interval = window / limit
local stored = redis.call('GET', KEYS[1])
if stored == 'blocked' then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return {0, 0, left, left, 1} end
  stored = false
end
local tat = now
if stored then
  if #stored == 8 then tat = struct.unpack('<d', stored) else tat = tonumber(stored) or now end
  if tat < now then tat = now end
end
local new_tat = tat + interval
if new_tat - now > window + 0.001 then
  local retry = math.max(1, math.ceil(new_tat - now - window))
  if write and block > 0 then
    -- The block replaces the count: once it ends, the subject starts afresh.
    redis.call('SET', KEYS[1], 'blocked', 'PX', block)
    return {0, 0, block, block, 1}
  end
  return {0, 0, retry, math.ceil(tat - now), 0}
end
if not write then
  return {1, math.floor((window - (tat - now)) / interval + 0.001), 0, math.ceil(tat - now), 0}
end
redis.call('SET', KEYS[1], struct.pack('<d', new_tat), 'PX', ttl)
return (new_tat - now) * 1000
"#;

/// The generic script's header. ARGV: limit, window ms, block ms, write (1: count, 0: peek).
const FROM_ARGS: &str = "local limit, window, block, write = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0, ARGV[4] == '1'\nlocal ttl = window + 1\n";

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
        let gcra = redis.register_generated_script("ratelimit_gcra".into(), format!("{FROM_ARGS}{GCRA}"));
        let reset = redis.register_script("ratelimit_reset", RESET);
        Self { redis, gcra, reset }
    }

    fn keys(&self, key: &str) -> Vec<String> {
        vec![self.redis.key(key)]
    }

    async fn run(&self, key: &str, limit: &Limit, script: Option<&Script>, write: bool) -> Result<Outcome, RedisError> {
        let reply = match script {
            Some(compiled) => self.redis.eval(compiled, self.keys(key), Vec::new()).await?,
            None => {
                let args = vec![
                    Arg::Int(i64::from(limit.limit)),
                    Arg::Int(limit.window_ms as i64),
                    Arg::Int(limit.block_ms as i64),
                    Arg::from(if write { "1" } else { "0" }),
                ];
                self.redis.eval(&self.gcra, self.keys(key), args).await?
            }
        };
        if let Reply::Int(debt_us) = reply {
            // Redis truncates the number to an integer: the debt to the microsecond.
            return Ok(admitted(debt_us as f64 / 1000.0, limit));
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
    /// A script of the limit's own, its numbers written in: a counted request sends only its key.
    fn compile(&self, limit: Limit) -> CompiledLimit {
        let Limit { limit: n, window_ms, block_ms } = limit;
        let header = format!(
            "local limit, window, block, write = {n}, {window_ms}, {block_ms}, true\nlocal ttl = '{}'\n",
            window_ms + 1
        );
        let name = format!("ratelimit_hit_{n}_{window_ms}_{block_ms}");
        CompiledLimit { limit, script: Some(self.redis.register_generated_script(name, format!("{header}{GCRA}"))) }
    }

    async fn hit(&self, key: &str, limit: &CompiledLimit) -> Result<Outcome, RedisError> {
        self.run(key, &limit.limit, limit.script.as_ref(), true).await
    }

    async fn peek(&self, key: &str, limit: &Limit) -> Result<Outcome, RedisError> {
        self.run(key, limit, None, false).await
    }

    async fn reset(&self, key: &str) -> Result<bool, RedisError> {
        let deleted = self.redis.eval(&self.reset, self.keys(key), Vec::new()).await?;
        Ok(deleted.as_i64().unwrap_or(0) > 0)
    }
}
