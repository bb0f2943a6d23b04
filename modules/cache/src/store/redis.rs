//! The Redis adapter. An entry is stored as `<generation>:<bytes>`; reads and conditional
//! writes are one Lua script each (entry and generation share the scope's hash tag).

use std::time::Duration;

use app_redis::{Arg, Redis, RedisError, Reply, Script};
use async_trait::async_trait;

use super::{CacheStore, EntryKey, Read};

/// The generation a scope gets when it has none: the server clock in microseconds (a decimal
/// string), later than any generation the scope had before.
macro_rules! fresh_generation {
    () => {
        "local function fresh() local t = redis.call('TIME') return t[1] .. string.format('%06d', t[2]) end\n"
    };
}

/// KEYS: entry, generation. ARGV: generation ttl ms. Returns {generation, stored entry or nil}.
const READ: &str = concat!(
    fresh_generation!(),
    r#"
local g = redis.call('GET', KEYS[2])
if not g then
  g = fresh()
  redis.call('SET', KEYS[2], g, 'PX', ARGV[1])
end
return {g, redis.call('GET', KEYS[1])}
"#
);

/// KEYS: entry, generation. ARGV: bytes, ttl ms, expected generation ('' for any), generation
/// ttl ms. The counter's TTL is renewed, so it outlives the entry.
const WRITE: &str = concat!(
    fresh_generation!(),
    r#"
local g = redis.call('GET', KEYS[2])
if not g then
  if ARGV[3] ~= '' then return 0 end
  g = fresh()
  redis.call('SET', KEYS[2], g, 'PX', ARGV[4])
elseif ARGV[3] ~= '' and ARGV[3] ~= g then
  return 0
else
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('SET', KEYS[1], g .. ':' .. ARGV[1], 'PX', ARGV[2])
return 1
"#
);

/// KEYS: generation, and the user's version when the scope is a user's (see
/// [`CacheStore::bump`]). ARGV: ttl ms. The next generation: one more, or the clock when that
/// is later (so a counter that expired or was evicted restarts above every earlier value).
const BUMP: &str = concat!(
    fresh_generation!(),
    app_redis::bump_version_lua!(),
    r#"
local g = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') + 1, tonumber(fresh()))
local s = string.format('%d', g)
redis.call('SET', KEYS[1], s, 'PX', ARGV[1])
if KEYS[2] then bump_version(KEYS[2], ARGV[1]) end
return s
"#
);

/// KEYS: lock. ARGV: token.
const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// KEYS: tag set. ARGV: member, ttl ms. The set lives at least as long as its newest member.
const TAG: &str = r#"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"#;

/// KEYS: tag set. Returns the members and deletes the set, atomically.
const TAKE_TAG: &str = r#"
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
"#;

/// Cache entries in Redis, shared by every instance.
pub struct RedisCacheStore {
    redis: Redis,
    read: Script,
    write: Script,
    bump: Script,
    unlock: Script,
    tag: Script,
    take_tag: Script,
}

impl RedisCacheStore {
    /// A store on `redis` (the shared-state Redis, or the separate cache Redis).
    pub fn new(redis: Redis) -> Self {
        Self {
            read: redis.register_script("cache_read", READ),
            write: redis.register_script("cache_write", WRITE),
            bump: redis.register_script("cache_bump", BUMP),
            unlock: redis.register_script("cache_unlock", UNLOCK),
            tag: redis.register_script("cache_tag", TAG),
            take_tag: redis.register_script("cache_take_tag", TAKE_TAG),
            redis,
        }
    }

    fn scope_key(&self, namespace: &str, scope: &str, suffix: &str) -> String {
        let mut key =
            String::with_capacity(self.redis.prefix().len() + namespace.len() + scope.len() + suffix.len() + 10);
        key.push_str(self.redis.prefix());
        key.push_str("cache:");
        key.push_str(namespace);
        key.push_str(":{");
        key.push_str(scope);
        key.push_str("}:");
        key.push_str(suffix);
        key
    }

    fn entry(&self, key: EntryKey<'_>) -> String {
        self.scope_key(key.namespace, key.scope, key.item)
    }

    fn generation(&self, namespace: &str, scope: &str) -> String {
        // `~` cannot start an item name the manager makes, so this never collides with an entry.
        self.scope_key(namespace, scope, "~gen")
    }

    fn lock(&self, key: EntryKey<'_>, generation: u64) -> String {
        let mut lock = self.entry(key);
        lock.push_str("~fill:");
        lock.push_str(&generation.to_string());
        lock
    }

    fn tag_key(&self, tag: &str) -> String {
        self.redis.key(&format!("cache:tag:{{{tag}}}"))
    }
}

fn ms(ttl: Duration) -> Arg {
    Arg::Int(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1))
}

/// Splits a stored `<generation>:<bytes>`; anything else (a corrupt entry) reads as absent.
fn split(stored: Vec<u8>) -> Option<(u64, Vec<u8>)> {
    let colon = stored.iter().position(|b| *b == b':')?;
    let generation = std::str::from_utf8(&stored[..colon]).ok()?.parse().ok()?;
    let mut stored = stored;
    stored.drain(..=colon);
    Some((generation, stored))
}

#[async_trait]
impl CacheStore for RedisCacheStore {
    async fn read(&self, key: EntryKey<'_>) -> Result<Read, RedisError> {
        let keys = vec![self.entry(key), self.generation(key.namespace, key.scope)];
        let args = vec![ms(key.generation_ttl)];
        let mut reply = self.redis.eval(&self.read, keys, args).await?.into_array().into_iter();
        let generation = reply.next().and_then(|g| g.as_i64()).and_then(|g| u64::try_from(g).ok()).unwrap_or(0);
        let value = match reply.next() {
            Some(Reply::Bytes(stored)) => split(stored).filter(|(g, _)| *g == generation).map(|(_, v)| v),
            _ => None,
        };
        Ok(Read { generation, value })
    }

    async fn write(
        &self,
        key: EntryKey<'_>,
        value: &[u8],
        ttl: Duration,
        if_generation: Option<u64>,
    ) -> Result<bool, RedisError> {
        let keys = vec![self.entry(key), self.generation(key.namespace, key.scope)];
        let expected = if_generation.map(|g| g.to_string()).unwrap_or_default();
        let args = vec![Arg::Bytes(value.to_vec()), ms(ttl), Arg::Str(expected), ms(key.generation_ttl)];
        Ok(self.redis.eval(&self.write, keys, args).await?.as_i64() == Some(1))
    }

    async fn delete(&self, key: EntryKey<'_>) -> Result<bool, RedisError> {
        Ok(self.redis.del(vec![self.entry(key)]).await? > 0)
    }

    async fn bump(
        &self,
        namespace: &str,
        scope: &str,
        ttl: Duration,
        version: Option<&str>,
    ) -> Result<u64, RedisError> {
        let keys = std::iter::once(self.generation(namespace, scope)).chain(version.map(str::to_owned)).collect();
        let reply = self.redis.eval(&self.bump, keys, vec![ms(ttl)]).await?;
        reply.as_i64().and_then(|g| u64::try_from(g).ok()).ok_or_else(|| RedisError::Command("bad generation".into()))
    }

    async fn try_lock(
        &self,
        key: EntryKey<'_>,
        generation: u64,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        self.redis.set(&self.lock(key, generation), token.as_bytes(), ttl, true).await
    }

    async fn unlock(&self, key: EntryKey<'_>, generation: u64, token: &str) -> Result<(), RedisError> {
        self.redis.eval(&self.unlock, vec![self.lock(key, generation)], vec![Arg::from(token)]).await.map(drop)
    }

    async fn tag(&self, tag: &str, key: EntryKey<'_>, ttl: Duration) -> Result<(), RedisError> {
        let args = vec![Arg::Str(self.entry(key)), ms(ttl)];
        self.redis.eval(&self.tag, vec![self.tag_key(tag)], args).await.map(drop)
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<u64, RedisError> {
        let members = self.redis.eval(&self.take_tag, vec![self.tag_key(tag)], Vec::new()).await?.into_array();
        // Members sit in many slots: one DEL each (pipelined), never a multi-key DEL.
        let deletes = members
            .iter()
            .filter_map(Reply::as_str)
            .map(|member| self.redis.del(vec![member.to_owned()]))
            .collect::<Vec<_>>();
        let mut deleted = 0;
        for result in futures::future::join_all(deletes).await {
            deleted += result?;
        }
        Ok(deleted)
    }

    fn is_available(&self) -> bool {
        self.redis.is_reachable()
    }
}
