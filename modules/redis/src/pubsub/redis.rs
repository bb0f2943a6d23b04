//! Redis pub/sub through the process's one subscriber connection.

use std::sync::Arc;

use async_trait::async_trait;
use fred::interfaces::PubsubInterface;

use super::{PubSub, Subscription};
use crate::{Redis, RedisError};

/// Pub/sub over Redis: messages reach subscribers on every instance.
#[derive(Clone)]
pub struct RedisPubSub {
    redis: Redis,
}

impl RedisPubSub {
    /// Uses `redis`'s subscriber connection.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }
}

#[async_trait]
impl PubSub for RedisPubSub {
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError> {
        self.redis.publish(&self.redis.key(channel), payload).await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, RedisError> {
        let full = self.redis.key(channel);
        let redis = self.redis.clone();
        let on_idle: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |channel: String| {
            let redis = redis.clone();
            tokio::spawn(async move {
                // A new subscriber may have joined since; only leave when the channel is still idle.
                if !redis.hub().has_subscribers(&channel) {
                    let _ = redis.subscriber().unsubscribe(channel.clone()).await;
                    // A subscriber that joined while UNSUBSCRIBE was in flight must not be left deaf.
                    if redis.hub().has_subscribers(&channel) {
                        let _ = redis.subscriber().subscribe(channel).await;
                    }
                }
            });
        });
        let sub = self.redis.hub().join(&full, Some(on_idle));
        // SUBSCRIBE is idempotent and acknowledged before it returns, so sending it for every
        // subscriber (not only the first of the channel) guarantees that a publish made after
        // `subscribe` returns is delivered. The connection re-issues it after every reconnect.
        self.redis.subscriber().subscribe(full).await?;
        Ok(sub)
    }
}
