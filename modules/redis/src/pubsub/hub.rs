//! Local fan-out of channel messages to subscribers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use fred::{clients::SubscriberClient, interfaces::EventInterface};
use tokio::sync::broadcast::{self, error::RecvError};

/// Messages buffered per channel for each local subscriber before it lags.
pub(crate) const CHANNEL_CAPACITY: usize = 256;

/// A message received on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The payload as published.
    pub payload: Vec<u8>,
    /// How many messages this subscriber missed right before this one because it read too slowly.
    pub lagged: u64,
}

/// Called when the last local subscriber of a channel goes away (to UNSUBSCRIBE).
type OnIdle = Arc<dyn Fn(String) + Send + Sync>;

/// The sending side of one channel's local fan-out.
type Fanout = broadcast::Sender<Arc<[u8]>>;

/// The prefix of the probe messages a subscriber publishes to learn that its SUBSCRIBE is in
/// effect. Probes are consumed by the hub of every instance and never reach a subscriber.
pub(crate) const PROBE_PREFIX: &[u8] = b"\0subscribe-probe:";

/// The channel -> local subscribers map.
#[derive(Clone, Default)]
pub(crate) struct Hub {
    channels: Arc<Mutex<HashMap<String, Fanout>>>,
    /// Probes awaited by `subscribe` calls, by probe id.
    probes: Arc<Mutex<HashMap<u64, tokio::sync::oneshot::Sender<()>>>>,
}

impl Hub {
    /// Registers a local subscriber of `channel`.
    pub(crate) fn join(&self, channel: &str, on_idle: Option<OnIdle>) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let rx = match channels.get(channel) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(CHANNEL_CAPACITY);
                channels.insert(channel.to_owned(), tx);
                rx
            }
        };
        Subscription { rx: Some(rx), channel: channel.to_owned(), hub: self.clone(), on_idle }
    }

    /// Registers a probe id; the receiver completes when the probe comes back from Redis.
    pub(crate) fn expect_probe(&self, id: u64) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.probes.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        rx
    }

    /// Forgets a probe that did not come back in time.
    pub(crate) fn forget_probe(&self, id: u64) {
        self.probes.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Delivers a message to the local subscribers of `channel` (or completes a probe).
    pub(crate) fn deliver(&self, channel: &str, payload: Arc<[u8]>) {
        if let Some(id) = payload.strip_prefix(PROBE_PREFIX) {
            let id = std::str::from_utf8(id).ok().and_then(|id| id.parse::<u64>().ok());
            if let Some(waiter) = id.and_then(|id| self.probes.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)) {
                let _ = waiter.send(());
            }
            return;
        }
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = channels.get(channel) {
            let _ = tx.send(payload);
        }
    }

    /// Whether `channel` still has local subscribers.
    pub(crate) fn has_subscribers(&self, channel: &str) -> bool {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).contains_key(channel)
    }

    /// Drops a subscriber's receiver; returns whether the channel is now idle (and removed).
    /// The receiver is dropped under the lock, so two subscribers leaving at once cannot both
    /// see the other still present and leave the channel behind.
    fn leave(&self, channel: &str, rx: Option<broadcast::Receiver<Arc<[u8]>>>) -> bool {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        drop(rx);
        if channels.get(channel).is_some_and(|tx| tx.receiver_count() == 0) {
            channels.remove(channel);
            return true;
        }
        false
    }
}

/// A live subscription to one channel; dropping it unsubscribes when it was the last one.
pub struct Subscription {
    rx: Option<broadcast::Receiver<Arc<[u8]>>>,
    channel: String,
    hub: Hub,
    on_idle: Option<OnIdle>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("channel", &self.channel).finish()
    }
}

impl Subscription {
    /// The next message; `None` once the connection is closed for good.
    pub async fn recv(&mut self) -> Option<Message> {
        let mut lagged = 0;
        let rx = self.rx.as_mut()?;
        loop {
            match rx.recv().await {
                Ok(payload) => {
                    return Some(Message { payload: payload.to_vec(), lagged });
                }
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.hub.leave(&self.channel, self.rx.take())
            && let Some(on_idle) = &self.on_idle
        {
            on_idle(self.channel.clone());
        }
    }
}

/// Forwards the subscriber connection's messages to the hub, for the life of the connection.
pub(crate) fn spawn_dispatcher(subscriber: &SubscriberClient, hub: Hub) {
    let mut rx = subscriber.message_rx();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    let payload: Arc<[u8]> = match msg.value.as_bytes() {
                        Some(bytes) => Arc::from(bytes),
                        None => Arc::from(msg.value.as_bytes_str().map(|s| s.as_bytes().to_vec()).unwrap_or_default()),
                    };
                    hub.deliver(&msg.channel, payload);
                }
                // The hub's own buffers absorb slow consumers; this only lags if the whole
                // process falls behind, and then the dispatcher just carries on.
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "pub/sub dispatcher lagged")
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}
