//! In-process pub/sub: the same fan-out, without Redis (one instance only).

use async_trait::async_trait;

use super::{Hub, PubSub, Subscription};
use crate::RedisError;

/// Pub/sub inside this process.
#[derive(Clone, Default)]
pub struct MemoryPubSub {
    hub: Hub,
}

impl MemoryPubSub {
    /// A new, empty hub.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PubSub for MemoryPubSub {
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError> {
        self.hub.deliver(channel, payload.into());
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, RedisError> {
        Ok(self.hub.join(channel, None))
    }

    fn has_local_subscribers(&self, channel: &str) -> bool {
        self.hub.has_subscribers(channel)
    }
}
