//! The Redis adapter: one Lua script per decision (one round trip, atomic, server clock).

use app_redis::{Arg, Redis, RedisError, Reply, Script};
use async_trait::async_trait;

use super::{CompiledLimit, Limit, Outcome, RateLimitStore, RedisForm, admitted};

/// Counts a request and decides. KEYS: the subject's state. Ahead of it, a header defines
/// `step` (the emission interval in µs, as the text `INCRBY` is sent), `interval` (the same as
/// a number), `span` (the debt a subject may carry, µs), `block` (ms) and `ttl` (two spans, in
/// ms): from ARGV in the generic script, as constants in a policy's compiled one.
///
/// The state is one integer (see [`super`]): the theoretical arrival time in µs, or minus the
/// end of a block while one runs. The script adds the interval first, with `INCRBY`, and looks
/// at what that gave; so a subject already in debt (its previous request came within an
/// interval, as a busy client's and an SPA's bursts of calls do) is counted with that one
/// command, where reading and then writing the state cost Redis two (each command called from
/// Lua costs Redis a few thousand instructions). The other paths put right what the addition
/// did: a subject out of debt gets the rest of the way to now plus the interval with a second
/// `INCRBY`, a new subject (or one whose block ended) is `SET` to it with the TTL, a refused
/// request is taken back, a blocked subject's state is restored. Additions only: `INCRBY` and
/// `DECRBY` change an integer in place, where a `SET` makes a new value and a new expiry (and,
/// with `PX`, rewrites itself for propagation as `PXAT`), several times the cost.
///
/// The state lives at least until the end of the span of the clock (a multiple of `span`) its
/// arrival time is in, and at most two spans: set with the state for two spans (`ttl`, in ms;
/// the arrival time is at most one span ahead, so that end is within two), and set so again
/// (`PEXPIRE`) only when the arrival time passes into a later span: for a subject in debt once
/// every `limit` counted requests at most, for one out of debt when its new arrival time is in
/// another span than its old one.
///
/// A counted, admitted request gets one integer back, its debt in µs, from which the app
/// derives the remaining allowance and the reset ([`admitted`]); every other outcome gets
/// {allowed, remaining, retry ms, reset ms, blocked}. The new arrival time goes to Redis as
/// text made with `%d`: a Lua number would be written by Redis 7.0 with `%.17g`, which costs
/// several times as much.
///
/// The body ends with the outcome in `out`, not with a `return`: the scripts made from it
/// return it ([`HIT_RETURN`]), and the form that also reads the user's version returns that
/// beside it, with no function of its own wrapped around the body (a closure made per request,
/// about 1,000 Redis instructions per guarded read; callgrind).
const HIT: &str = include_str!("hit.lua");

/// What ends a script made of [`HIT`] alone.
const HIT_RETURN: &str = "return out\n";

/// The generic script's header. ARGV: interval µs, limit, block ms.
const HIT_ARGS: &str = "local step, block = ARGV[1], ARGV[3] + 0\nlocal interval = step + 0\n\
                        local span = interval * ARGV[2]\nlocal ttl = math.ceil(span / 500)\n";

/// What a request now would get, counting nothing. KEYS: the subject's state. ARGV: interval
/// µs, limit. Returns {allowed, remaining, retry ms, reset ms, blocked}, as `decide` without
/// `write`.
const PEEK: &str = r#"
local now = math.floor(server_ms() * 1000 + 0.5)
local interval = ARGV[1] + 0
local span = interval * ARGV[2]
local state = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if -state > now then
  local left = math.ceil((-state - now) / 1000)
  return {0, 0, left, left, 1}
end
local debt = math.max(state, now) - now
if debt + interval > span then
  return {0, 0, math.max(1, math.ceil((debt + interval - span) / 1000)), math.ceil(debt / 1000), 0}
end
return {1, math.floor((span - debt) / interval), 0, math.ceil(debt / 1000), 0}
"#;

const RESET: &str = "return redis.call('DEL', KEYS[1])";

/// Takes back one admitted request, as `refunded`. KEYS: the subject's state. ARGV: interval
/// µs. `DECRBY` keeps the key's TTL; a missing key or a block is left alone (so no key is ever
/// made without a TTL).
const REFUND: &str = r#"
local state = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if state > 0 then redis.call('DECRBY', KEYS[1], ARGV[1]) end
return 0
"#;

/// Rate-limit state in Redis, shared by every instance.
pub struct RedisRateLimitStore {
    redis: Redis,
    hit: Script,
    peek: Script,
    reset: Script,
    refund: Script,
}

impl RedisRateLimitStore {
    /// A store on `redis`.
    pub fn new(redis: Redis) -> Self {
        let hit = redis.register_generated_script("ratelimit_hit".into(), format!("{HIT_ARGS}{HIT}{HIT_RETURN}"));
        let peek = redis.register_script("ratelimit_peek", PEEK);
        let reset = redis.register_script("ratelimit_reset", RESET);
        let refund = redis.register_script("ratelimit_refund", REFUND);
        Self { redis, hit, peek, reset, refund }
    }

    /// The state's key, alone, as a script's KEYS.
    fn keys(&self, key: &str, suffix: &str) -> Vec<String> {
        vec![self.key(key, suffix)]
    }

    /// The state's key: `<prefix><key>:<span>us`. The state's TTL is reckoned in spans (see
    /// [`HIT`]), so a policy whose numbers change starts from fresh state rather than keep one
    /// whose TTL was set for other numbers (and could run out while a debt remains).
    fn key(&self, key: &str, suffix: &str) -> String {
        let prefix = self.redis.prefix();
        let mut full = String::with_capacity(prefix.len() + key.len() + suffix.len());
        full.push_str(prefix);
        full.push_str(key);
        full.push_str(suffix);
        full
    }
}

/// What follows a key of `limit`'s state.
fn suffix(limit: &Limit) -> String {
    format!(":{}us", limit.span_us())
}

/// The outcome in a script's reply: the debt of an admitted request, or the whole outcome.
fn outcome(reply: Reply, limit: &Limit) -> Result<Outcome, RedisError> {
    if let Reply::Int(debt_us) = reply {
        return Ok(admitted(debt_us, limit));
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

#[async_trait]
impl RateLimitStore for RedisRateLimitStore {
    /// A script of the limit's own, its numbers written in: a counted request sends only its key.
    fn compile(&self, limit: Limit) -> CompiledLimit {
        let (interval, span, block) = (limit.interval_us(), limit.span_us(), limit.block_ms);
        let ttl = (2 * span as u64).div_ceil(1000);
        let header =
            format!("local step, interval, span, block, ttl = '{interval}', {interval}, {span}, {block}, '{ttl}'\n");
        let name = format!("ratelimit_hit_{interval}_{span}_{block}");
        let source: std::sync::Arc<str> = format!("{header}{HIT}").into();
        let script = self.redis.register_generated_script(name, format!("{source}{HIT_RETURN}"));
        let reading = std::sync::Arc::default();
        CompiledLimit { limit, redis: Some(RedisForm { script, reading, source, suffix: suffix(&limit) }) }
    }

    async fn hit_reading(
        &self,
        key: &str,
        limit: &CompiledLimit,
        read: &str,
    ) -> Result<(Outcome, Option<Option<i64>>), RedisError> {
        let Some(form) = limit.redis.as_ref() else { return Ok((self.hit(key, limit).await?, None)) };
        let reading = form.reading.get_or_init(|| {
            // Two values, not an array: combined with other requests' calls, the pair goes
            // into the combined reply as it is (see `register_generated_values_script`).
            let lua = format!("{}return out, redis.call('GET', KEYS[2])\n", form.source);
            self.redis.register_generated_values_script(format!("{}_read", form.script.name()), lua, 2)
        });
        let keys = vec![self.key(key, &form.suffix), read.to_owned()];
        // One script, combined with other requests' (see `eval_coalesced`): a plain GET beside
        // it would go out on its own (fred flushes after each command unless more wait), at
        // more cost to Redis than the script saves.
        let mut reply = self.redis.eval_coalesced(reading, keys, Vec::new()).await?.into_array().into_iter();
        let decided = outcome(reply.next().unwrap_or(Reply::Nil), &limit.limit)?;
        // An absent version key reads as nil.
        let value = reply.next().as_ref().and_then(Reply::as_i64);
        Ok((decided, Some(value)))
    }

    async fn hit(&self, key: &str, limit: &CompiledLimit) -> Result<Outcome, RedisError> {
        let reply = match &limit.redis {
            // Policies' counts are the hot path's scripts: concurrent requests' go as one call.
            Some(form) => self.redis.eval_coalesced(&form.script, self.keys(key, &form.suffix), Vec::new()).await?,
            None => {
                let Limit { limit: n, block_ms, .. } = limit.limit;
                let args = vec![Arg::Int(limit.limit.interval_us()), Arg::Int(i64::from(n)), Arg::Int(block_ms as i64)];
                self.redis.eval(&self.hit, self.keys(key, &suffix(&limit.limit)), args).await?
            }
        };
        outcome(reply, &limit.limit)
    }

    async fn peek(&self, key: &str, limit: &Limit) -> Result<Outcome, RedisError> {
        let args = vec![Arg::Int(limit.interval_us()), Arg::Int(i64::from(limit.limit))];
        outcome(self.redis.eval(&self.peek, self.keys(key, &suffix(limit)), args).await?, limit)
    }

    async fn reset(&self, key: &str, limit: &Limit) -> Result<bool, RedisError> {
        let deleted = self.redis.eval(&self.reset, self.keys(key, &suffix(limit)), Vec::new()).await?;
        Ok(deleted.as_i64().unwrap_or(0) > 0)
    }

    async fn refund(&self, key: &str, limit: &Limit) -> Result<(), RedisError> {
        let args = vec![Arg::Int(limit.interval_us())];
        self.redis.eval(&self.refund, self.keys(key, &suffix(limit)), args).await.map(drop)
    }
}
