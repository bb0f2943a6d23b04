//! The Redis adapter: the lock is a hash `lock:{<resource>}` (token hash, fencing token, owner)
//! with the lease as its TTL, and the fencing counter `lock:{<resource>}:fence` shares its hash
//! tag; every step is one Lua script (compare-and-set on the token hash).

use std::time::Duration;

use app_redis::{Arg, Redis, RedisError, Reply, Script};
use async_trait::async_trait;

use super::{Check, FENCE_TTL, Holder, LockStore};

/// KEYS: lock, fence. ARGV: token hash, owner, ttl ms, fence ttl ms.
/// Returns {1, fencing} when taken, {0, holder's ttl ms} when held.
const ACQUIRE: &str = r#"
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return {0, left} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local f = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, now)
local fs = string.format('%d', f)
redis.call('SET', KEYS[2], fs, 'PX', ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 't', ARGV[1], 'f', fs, 'o', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, fs}
"#;

/// KEYS: lock. ARGV: token hash, ttl ms ('' to only look). Returns {0} free, {1, fencing, ttl}
/// held by the token (renewed when a ttl is given), {2, ttl} held by another.
const CHECK: &str = r#"
local held = redis.call('HMGET', KEYS[1], 't', 'f')
if not held[1] then return {0} end
if held[1] ~= ARGV[1] then return {2, redis.call('PTTL', KEYS[1])} end
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, held[2], redis.call('PTTL', KEYS[1])}
"#;

/// KEYS: lock. ARGV: token hash.
const RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// KEYS: lock. Returns {owner, fencing, ttl} or nil.
const HOLDER: &str = r#"
local held = redis.call('HMGET', KEYS[1], 'o', 'f')
if not held[1] then return false end
return {held[1], held[2], redis.call('PTTL', KEYS[1])}
"#;

/// Locks in Redis, shared by every instance.
pub struct RedisLockStore {
    redis: Redis,
    acquire: Script,
    check: Script,
    release: Script,
    holder: Script,
}

impl RedisLockStore {
    /// A store on `redis`.
    pub fn new(redis: Redis) -> Self {
        Self {
            acquire: redis.register_script("lock_acquire", ACQUIRE),
            check: redis.register_script("lock_check", CHECK),
            release: redis.register_script("lock_release", RELEASE),
            holder: redis.register_script("lock_holder", HOLDER),
            redis,
        }
    }

    fn lock_key(&self, resource: &str) -> String {
        self.redis.key(&format!("lock:{{{resource}}}"))
    }

    fn fence_key(&self, resource: &str) -> String {
        self.redis.key(&format!("lock:{{{resource}}}:fence"))
    }

    async fn check_or_extend(
        &self,
        resource: &str,
        token_hash: &str,
        ttl: Option<Duration>,
    ) -> Result<Check, RedisError> {
        let ttl = ttl.map(|t| ms(t).to_string()).unwrap_or_default();
        let args = vec![Arg::from(token_hash), Arg::Str(ttl)];
        let reply = self.redis.eval(&self.check, vec![self.lock_key(resource)], args).await?.into_array();
        let int = |i: usize| reply.get(i).and_then(Reply::as_i64).ok_or_else(unexpected);
        Ok(match int(0)? {
            0 => Check::Free,
            1 => Check::Held { fencing: positive(int(1)?), ttl: duration(int(2)?) },
            _ => Check::HeldByOther { ttl: duration(int(1)?) },
        })
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

fn positive(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn duration(ms: i64) -> Duration {
    Duration::from_millis(positive(ms))
}

fn unexpected() -> RedisError {
    RedisError::Command("unexpected reply from a lock script".into())
}

#[async_trait]
impl LockStore for RedisLockStore {
    async fn acquire(
        &self,
        resource: &str,
        token_hash: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Result<u64, Duration>, RedisError> {
        let keys = vec![self.lock_key(resource), self.fence_key(resource)];
        let args = vec![Arg::from(token_hash), Arg::from(owner), Arg::Int(ms(ttl)), Arg::Int(ms(FENCE_TTL))];
        let reply = self.redis.eval(&self.acquire, keys, args).await?.into_array();
        let int = |i: usize| reply.get(i).and_then(Reply::as_i64).ok_or_else(unexpected);
        Ok(match int(0)? {
            1 => Ok(positive(int(1)?)),
            _ => Err(duration(int(1)?)),
        })
    }

    async fn check(&self, resource: &str, token_hash: &str) -> Result<Check, RedisError> {
        self.check_or_extend(resource, token_hash, None).await
    }

    async fn extend(&self, resource: &str, token_hash: &str, ttl: Duration) -> Result<Check, RedisError> {
        self.check_or_extend(resource, token_hash, Some(ttl)).await
    }

    async fn release(&self, resource: &str, token_hash: &str) -> Result<bool, RedisError> {
        let reply = self.redis.eval(&self.release, vec![self.lock_key(resource)], vec![Arg::from(token_hash)]).await?;
        Ok(reply.as_i64() == Some(1))
    }

    async fn holder(&self, resource: &str) -> Result<Option<Holder>, RedisError> {
        let reply = self.redis.eval(&self.holder, vec![self.lock_key(resource)], Vec::new()).await?;
        let parts = match reply {
            Reply::Nil => return Ok(None),
            other => other.into_array(),
        };
        let owner = parts.first().and_then(Reply::as_str).ok_or_else(unexpected)?.to_owned();
        let fencing = parts.get(1).and_then(Reply::as_i64).map(positive).ok_or_else(unexpected)?;
        let ttl = parts.get(2).and_then(Reply::as_i64).map(duration).ok_or_else(unexpected)?;
        Ok(Some(Holder { owner, fencing, ttl }))
    }
}
