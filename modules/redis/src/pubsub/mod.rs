//! Pub/sub: publish to a channel, subscribe with a stream that every instance's publishes reach.
//!
//! One subscriber connection per process carries every channel; a [`Hub`] fans messages out to
//! the local subscribers of each channel, so a thousand SSE clients cost one Redis subscription
//! per channel, and a slow client only ever loses its own messages (it sees a `lagged` count),
//! never anyone else's. Redis pub/sub is at-most-once: consumers that must not miss anything
//! read the current state after subscribing.

mod hub;
mod memory;
mod redis;

use async_trait::async_trait;
use shaku::Interface;

pub(crate) use hub::{Hub, spawn_dispatcher};
pub use hub::{Message, Subscription};
pub use memory::MemoryPubSub;
pub use redis::RedisPubSub;

use crate::RedisError;

/// The pub/sub port.
#[async_trait]
pub trait PubSub: Interface {
    /// Sends `payload` to every current subscriber of `channel`, on every instance.
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError>;

    /// Subscribes to `channel`. Messages published after this returns are delivered.
    async fn subscribe(&self, channel: &str) -> Result<Subscription, RedisError>;

    /// Whether this process still holds subscribers of `channel` (for tests and diagnostics).
    fn has_local_subscribers(&self, channel: &str) -> bool;
}

#[cfg(test)]
pub(crate) mod contract {
    //! The contract every [`PubSub`] adapter passes.
    use std::{sync::Arc, time::Duration};

    use super::*;

    async fn next(sub: &mut Subscription) -> Option<Message> {
        tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.ok().flatten()
    }

    pub async fn a_subscriber_receives_what_is_published(ps: Arc<dyn PubSub>) {
        let channel = app_core::testing::unique_prefix() + "ch";
        let mut sub = ps.subscribe(&channel).await.expect("subscribe");
        ps.publish(&channel, b"hello").await.expect("publish");
        let msg = next(&mut sub).await.expect("a message");
        assert_eq!(msg.payload, b"hello");
    }

    pub async fn every_subscriber_of_a_channel_gets_each_message_in_order(ps: Arc<dyn PubSub>) {
        let channel = app_core::testing::unique_prefix() + "ch";
        let mut a = ps.subscribe(&channel).await.expect("subscribe a");
        let mut b = ps.subscribe(&channel).await.expect("subscribe b");
        for i in 0..5u8 {
            ps.publish(&channel, &[i]).await.expect("publish");
        }
        for sub in [&mut a, &mut b] {
            for i in 0..5u8 {
                assert_eq!(next(sub).await.expect("a message").payload, vec![i]);
            }
        }
    }

    pub async fn channels_are_isolated(ps: Arc<dyn PubSub>) {
        let base = app_core::testing::unique_prefix();
        let mut one = ps.subscribe(&(base.clone() + "one")).await.expect("subscribe");
        ps.publish(&(base.clone() + "two"), b"not for you").await.expect("publish");
        ps.publish(&(base + "one"), b"for you").await.expect("publish");
        assert_eq!(next(&mut one).await.expect("a message").payload, b"for you");
    }

    pub async fn channels_with_no_subscribers_left_are_released(ps: Arc<dyn PubSub>) {
        let channel = app_core::testing::unique_prefix() + "ch";
        for _ in 0..20 {
            let subs: Vec<_> = futures::future::join_all((0..4).map(|_| ps.subscribe(&channel))).await;
            let subs: Vec<Subscription> = subs.into_iter().map(|s| s.expect("subscribe")).collect();
            // Drop them on several threads at once.
            let drops: Vec<_> = subs.into_iter().map(|s| tokio::spawn(async move { drop(s) })).collect();
            for d in drops {
                d.await.expect("drop task");
            }
        }
        assert!(!ps.has_local_subscribers(&channel), "the channel was released");
        // And it still works afterwards.
        let mut sub = ps.subscribe(&channel).await.expect("subscribe again");
        ps.publish(&channel, b"again").await.expect("publish");
        assert_eq!(next(&mut sub).await.expect("a message").payload, b"again");
    }

    pub async fn a_lagging_subscriber_is_told_and_keeps_receiving(ps: Arc<dyn PubSub>) {
        let channel = app_core::testing::unique_prefix() + "ch";
        let mut slow = ps.subscribe(&channel).await.expect("subscribe");
        let mut fast = ps.subscribe(&channel).await.expect("subscribe");
        let total = hub::CHANNEL_CAPACITY + 50;
        for i in 0..total {
            ps.publish(&channel, i.to_string().as_bytes()).await.expect("publish");
            // The fast subscriber keeps up, the slow one does not read at all.
            assert_eq!(next(&mut fast).await.expect("fast gets every message").payload, i.to_string().as_bytes());
        }
        let first = next(&mut slow).await.expect("slow still receives");
        assert!(first.lagged > 0, "the slow subscriber learns it missed messages");
        ps.publish(&channel, b"after").await.expect("publish");
        let mut last = first;
        while last.payload != b"after" {
            last = next(&mut slow).await.expect("slow catches up");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn memory_pubsub() -> Arc<dyn PubSub> {
        Arc::new(MemoryPubSub::new())
    }

    async fn redis_pubsub() -> Arc<dyn PubSub> {
        Arc::new(RedisPubSub::new(crate::testing::redis().await))
    }

    async fn redis_cluster_pubsub() -> Arc<dyn PubSub> {
        Arc::new(RedisPubSub::new(crate::testing::redis_cluster().await))
    }

    app_core::contract_tests! {
        suite = contract,
        adapters = { memory => memory_pubsub, redis => redis_pubsub, redis_cluster => redis_cluster_pubsub },
        tests = [
            a_subscriber_receives_what_is_published,
            every_subscriber_of_a_channel_gets_each_message_in_order,
            channels_are_isolated,
            channels_with_no_subscribers_left_are_released,
            a_lagging_subscriber_is_told_and_keeps_receiving,
        ],
    }
}
