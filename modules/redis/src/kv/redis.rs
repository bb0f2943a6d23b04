//! The Redis [`KvStore`].

use std::time::Duration;

use async_trait::async_trait;

use super::{KvStore, MAX_TTL};
use crate::{Redis, RedisError, scripts::Script};

/// INCRBY that gives a new key its TTL, atomically (a crash between INCRBY and PEXPIRE would
/// otherwise leave a counter that never expires).
const INCREMENT: &str = r"
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
";

/// Key-value storage in Redis, under `<prefix>kv:`.
pub struct RedisKvStore {
    redis: Redis,
    increment: Script,
}

impl RedisKvStore {
    /// Uses `redis`.
    pub fn new(redis: Redis) -> Self {
        let increment = redis.register_script("kv.increment", INCREMENT);
        Self { redis, increment }
    }

    fn key(&self, key: &str) -> String {
        self.redis.key(&format!("kv:{key}"))
    }
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.min(MAX_TTL).as_millis()).unwrap_or(i64::MAX).max(1)
}

#[async_trait]
impl KvStore for RedisKvStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RedisError> {
        self.redis.get(&self.key(key)).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisError> {
        self.redis.set(&self.key(key), value, ttl.min(MAX_TTL), false).await.map(|_| ())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, RedisError> {
        self.redis.set(&self.key(key), value, ttl.min(MAX_TTL), true).await
    }

    async fn delete(&self, key: &str) -> Result<bool, RedisError> {
        Ok(self.redis.del(vec![self.key(key)]).await? > 0)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, RedisError> {
        // A key without a TTL cannot be written through this port; report it as the longest.
        Ok(self.redis.pttl(&self.key(key)).await?.map(|ttl| ttl.unwrap_or(MAX_TTL)))
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, RedisError> {
        let reply = self.redis.eval(&self.increment, vec![self.key(key)], vec![by.into(), millis(ttl).into()]).await?;
        reply.as_i64().ok_or_else(|| RedisError::Command(format!("unexpected reply {reply:?}")))
    }
}
