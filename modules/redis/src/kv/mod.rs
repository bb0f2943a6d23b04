//! A small key-value port with TTLs: the first port with both adapters and one contract suite.
//!
//! Every value has a TTL (nothing in shared state may live forever). Keys are the caller's;
//! the Redis adapter namespaces them under `<prefix>kv:`.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use shaku::Interface;

pub use memory::MemoryKvStore;
pub use redis::RedisKvStore;

use crate::RedisError;

/// The longest TTL a value may have (ten years); longer TTLs are capped to it by both adapters,
/// so a caller's `Duration::MAX` means "practically forever" and not an overflow.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Key-value storage with TTLs, shared by every instance on the Redis backend.
#[async_trait]
pub trait KvStore: Interface {
    /// The value, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RedisError>;

    /// Stores `value` for `ttl`, replacing any value.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisError>;

    /// Stores `value` for `ttl` only if the key is absent; returns whether it was stored.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, RedisError>;

    /// Removes the key; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, RedisError>;

    /// The remaining time to live, or `None` when the key is absent.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, RedisError>;

    /// Adds `by` to the integer at `key` (absent counts as 0) and returns the new value. A key
    /// created here expires after `ttl`; an existing key keeps its expiry. Fails with
    /// [`RedisError::Command`] when the value is not an integer.
    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, RedisError>;
}

#[cfg(test)]
pub(crate) mod contract {
    //! The contract every [`KvStore`] adapter passes.
    use std::{sync::Arc, time::Duration};

    use super::KvStore;
    use crate::RedisError;

    fn key() -> String {
        app_core::testing::unique_prefix() + "k"
    }

    const MINUTE: Duration = Duration::from_secs(60);

    pub async fn get_returns_what_set_stored(kv: Arc<dyn KvStore>) {
        let k = key();
        kv.set(&k, b"v1", MINUTE).await.expect("set");
        assert_eq!(kv.get(&k).await.expect("get"), Some(b"v1".to_vec()));
        kv.set(&k, b"v2", MINUTE).await.expect("overwrite");
        assert_eq!(kv.get(&k).await.expect("get"), Some(b"v2".to_vec()));
    }

    pub async fn missing_keys_read_as_none(kv: Arc<dyn KvStore>) {
        let k = key();
        assert_eq!(kv.get(&k).await.expect("get"), None);
        assert_eq!(kv.ttl(&k).await.expect("ttl"), None);
        assert!(!kv.delete(&k).await.expect("delete"));
    }

    pub async fn values_expire_after_their_ttl(kv: Arc<dyn KvStore>) {
        let k = key();
        kv.set(&k, b"short", Duration::from_millis(1000)).await.expect("set");
        assert!(kv.get(&k).await.expect("get").is_some());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(kv.get(&k).await.expect("get"), None);
        assert!(kv.set_if_absent(&k, b"again", MINUTE).await.expect("set nx"), "an expired key is absent");
    }

    pub async fn a_huge_ttl_is_capped_not_an_error(kv: Arc<dyn KvStore>) {
        let k = key();
        kv.set(&k, b"v", Duration::MAX).await.expect("set with Duration::MAX");
        let ttl = kv.ttl(&k).await.expect("ttl").expect("present");
        assert!(ttl <= super::MAX_TTL && ttl > super::MAX_TTL - MINUTE, "{ttl:?}");
        assert_eq!(kv.increment(&(k + "n"), 1, Duration::MAX).await.expect("incr"), 1);
    }

    pub async fn set_if_absent_writes_only_once(kv: Arc<dyn KvStore>) {
        let k = key();
        assert!(kv.set_if_absent(&k, b"first", MINUTE).await.expect("set nx"));
        assert!(!kv.set_if_absent(&k, b"second", MINUTE).await.expect("set nx"));
        assert_eq!(kv.get(&k).await.expect("get"), Some(b"first".to_vec()));
    }

    pub async fn set_if_absent_has_exactly_one_winner_under_concurrency(kv: Arc<dyn KvStore>) {
        let k = key();
        let attempts = (0..50).map(|i| {
            let (kv, k) = (kv.clone(), k.clone());
            tokio::spawn(async move { kv.set_if_absent(&k, i.to_string().as_bytes(), MINUTE).await.expect("set nx") })
        });
        let mut winners = 0;
        for attempt in attempts {
            winners += usize::from(attempt.await.expect("task"));
        }
        assert_eq!(winners, 1);
    }

    pub async fn delete_reports_whether_the_key_existed(kv: Arc<dyn KvStore>) {
        let k = key();
        kv.set(&k, b"v", MINUTE).await.expect("set");
        assert!(kv.delete(&k).await.expect("delete"));
        assert!(!kv.delete(&k).await.expect("delete again"));
        assert_eq!(kv.get(&k).await.expect("get"), None);
    }

    pub async fn every_key_carries_its_ttl(kv: Arc<dyn KvStore>) {
        let k = key();
        kv.set(&k, b"v", MINUTE).await.expect("set");
        let ttl = kv.ttl(&k).await.expect("ttl").expect("present");
        assert!(ttl > Duration::from_secs(55) && ttl <= MINUTE, "{ttl:?}");
    }

    pub async fn increment_counts_and_keeps_the_first_expiry(kv: Arc<dyn KvStore>) {
        let k = key();
        assert_eq!(kv.increment(&k, 1, MINUTE).await.expect("incr"), 1);
        assert_eq!(kv.increment(&k, 5, Duration::from_secs(3600)).await.expect("incr"), 6);
        assert_eq!(kv.increment(&k, -2, MINUTE).await.expect("incr"), 4);
        let ttl = kv.ttl(&k).await.expect("ttl").expect("present");
        assert!(ttl <= MINUTE, "an existing counter keeps its expiry: {ttl:?}");
        assert_eq!(kv.get(&k).await.expect("get"), Some(b"4".to_vec()));
    }

    pub async fn increment_is_exact_under_concurrency(kv: Arc<dyn KvStore>) {
        let k = key();
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (kv, k) = (kv.clone(), k.clone());
                tokio::spawn(async move { kv.increment(&k, 1, MINUTE).await.expect("incr") })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.expect("task"));
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=100).collect::<Vec<i64>>(), "each increment sees a distinct value");
    }

    pub async fn incrementing_a_non_number_fails(kv: Arc<dyn KvStore>) {
        let k = key();
        kv.set(&k, b"not a number", MINUTE).await.expect("set");
        let err = kv.increment(&k, 1, MINUTE).await.expect_err("not an integer");
        assert!(matches!(err, RedisError::Command(_)), "{err:?}");
    }
}
