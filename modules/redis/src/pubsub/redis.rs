//! Redis pub/sub through the process's one subscriber connection.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use fred::interfaces::PubsubInterface;

use super::{PubSub, Subscription, hub::PROBE_PREFIX};
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
        // SUBSCRIBE is idempotent, so it is sent for every subscriber (not only the first of the
        // channel); the connection re-issues it after every reconnect.
        // fred resolves SUBSCRIBE once it is written, not once Redis has processed it (and a
        // PING on the subscriber connection confuses its reply matching). So the subscriber
        // publishes a probe on the channel and waits for it to come back: from then on, a
        // publish from any connection on any node reaches this subscriber.
        let probe_id: u64 = rand::random();
        let probe_back = self.redis.hub().expect_probe(probe_id);
        let mut probe = PROBE_PREFIX.to_vec();
        probe.extend_from_slice(probe_id.to_string().as_bytes());
        let confirmed = async {
            self.redis.subscriber().subscribe(full.clone()).await?;
            // On a cluster the probe may reach the subscriber's node before the SUBSCRIBE does
            // and be lost, so it is sent again, with a growing pause, until one comes back.
            let mut probe_back = std::pin::pin!(probe_back);
            let mut pause = Duration::from_millis(5);
            let deadline = tokio::time::Instant::now() + self.redis.command_timeout();
            loop {
                self.redis.publish(&full, &probe).await?;
                match tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + pause), &mut probe_back).await
                {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(_)) => return Err(RedisError::Unavailable("the subscriber connection closed".into())),
                    Err(_) if tokio::time::Instant::now() >= deadline => {
                        return Err(RedisError::Unavailable("SUBSCRIBE was not confirmed in time".into()));
                    }
                    Err(_) => pause = (pause * 2).min(Duration::from_millis(200)),
                }
            }
        };
        if let Err(err) = confirmed.await {
            self.redis.hub().forget_probe(probe_id);
            return Err(err);
        }
        Ok(sub)
    }

    fn has_local_subscribers(&self, channel: &str) -> bool {
        self.redis.hub().has_subscribers(&self.redis.key(channel))
    }
}
