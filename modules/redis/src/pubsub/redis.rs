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
    /// Serializes SUBSCRIBE and UNSUBSCRIBE, so an UNSUBSCRIBE for a channel that looked idle can
    /// never land after a new subscriber's SUBSCRIBE was acknowledged.
    control: Arc<tokio::sync::Mutex<()>>,
}

impl RedisPubSub {
    /// Uses `redis`'s subscriber connection.
    pub fn new(redis: Redis) -> Self {
        Self { redis, control: Arc::default() }
    }
}

#[async_trait]
impl PubSub for RedisPubSub {
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError> {
        self.redis.publish(&self.redis.key(channel), payload).await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, RedisError> {
        let full = self.redis.key(channel);
        let (redis, control) = (self.redis.clone(), self.control.clone());
        let on_idle: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |channel: String| {
            let (redis, control) = (redis.clone(), control.clone());
            // Dropped outside a runtime (process exit): the connection is going away anyway.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
            runtime.spawn(async move {
                let _serialized = control.lock().await;
                // A subscriber may have joined since; leave only when the channel is still idle.
                if !redis.hub().has_subscribers(&channel)
                    && let Err(err) = redis.subscriber().unsubscribe(channel).await
                {
                    tracing::debug!(error = %err, "UNSUBSCRIBE failed; the channel stays subscribed");
                }
            });
        });
        // Join locally first, then SUBSCRIBE under the control lock: an idle check that runs
        // after the join sees this subscriber; one that ran before has finished its UNSUBSCRIBE.
        let sub = self.redis.hub().join(&full, Some(on_idle));
        let _serialized = self.control.lock().await;
        // SUBSCRIBE is idempotent and acknowledged before it returns, so sending it for every
        // subscriber (not only the first of the channel) guarantees that a publish made after
        // `subscribe` returns is delivered. The connection re-issues it after every reconnect.
        self.redis.subscriber().subscribe(full).await?;
        Ok(sub)
    }

    fn has_local_subscribers(&self, channel: &str) -> bool {
        self.redis.hub().has_subscribers(&self.redis.key(channel))
    }
}
