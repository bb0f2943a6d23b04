//! The contract every [`RateLimitStore`] adapter passes.

use std::{sync::Arc, time::Duration};

use super::*;

fn key() -> String {
    format!("rl:test:{{{}}}", app_core::testing::unique_prefix())
}

pub async fn a_burst_of_limit_passes_then_requests_are_refused(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 3, window_ms: 60_000, block_ms: 0 });
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let o = store.hit(&key, &limit).await.expect("hit");
        assert!(o.allowed);
        remaining.push(o.remaining);
    }
    assert_eq!(remaining, [2, 1, 0]);
    let refused = store.hit(&key, &limit).await.expect("hit");
    assert!(!refused.allowed && !refused.blocked);
    // One emission interval (20 s) until the next request may pass.
    assert!((19_000..=20_000).contains(&refused.retry_after_ms), "{refused:?}");
    assert!((59_000..=60_000).contains(&refused.reset_ms), "{refused:?}");
}

pub async fn the_allowance_recovers_as_the_window_moves(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 2, window_ms: 2_000, block_ms: 0 });
    assert!(store.hit(&key, &limit).await.expect("hit").allowed);
    assert!(store.hit(&key, &limit).await.expect("hit").allowed);
    let refused = store.hit(&key, &limit).await.expect("hit");
    assert!(!refused.allowed);
    tokio::time::sleep(Duration::from_millis(refused.retry_after_ms + 50)).await;
    assert!(store.hit(&key, &limit).await.expect("hit").allowed, "one interval later, one more passes");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let whole = store.peek(&key, &limit).await.expect("peek");
    assert_eq!(whole.remaining, 2, "a whole window later the allowance is whole again");
}

pub async fn a_block_outlasts_the_window_and_ends_by_itself(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 2, window_ms: 60_000, block_ms: 900 });
    assert!(store.hit(&key, &limit).await.expect("hit").allowed);
    assert!(store.hit(&key, &limit).await.expect("hit").allowed);
    let refused = store.hit(&key, &limit).await.expect("hit");
    assert!(!refused.allowed && refused.blocked);
    assert_eq!(refused.retry_after_ms, 900, "retry after the block, not the window");
    assert_eq!(refused.reset_ms, 900, "the allowance is back when the block ends");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = store.hit(&key, &limit).await.expect("hit");
    assert!(!still.allowed && still.blocked, "the block holds");
    assert!(still.retry_after_ms < 900 && still.retry_after_ms > 0, "the block counts down: {still:?}");
    let peeked = store.peek(&key, &limit).await.expect("peek");
    assert!(peeked.blocked && !peeked.allowed);
    tokio::time::sleep(Duration::from_millis(still.retry_after_ms + 50)).await;
    let released = store.hit(&key, &limit).await.expect("hit");
    assert!(released.allowed && released.remaining == 1, "released with the whole allowance: {released:?}");
}

pub async fn peeking_counts_nothing_and_reset_forgets(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 2, window_ms: 60_000, block_ms: 60_000 });
    let fresh = store.peek(&key, &limit).await.expect("peek");
    assert!(fresh.allowed && fresh.remaining == 2 && !fresh.blocked);
    store.hit(&key, &limit).await.expect("hit");
    assert_eq!(store.peek(&key, &limit).await.expect("peek").remaining, 1);
    assert_eq!(store.peek(&key, &limit).await.expect("peek").remaining, 1, "peeking counts nothing");
    store.hit(&key, &limit).await.expect("hit");
    assert!(store.hit(&key, &limit).await.expect("hit").blocked);
    assert!(store.reset(&key).await.expect("reset"));
    let after = store.hit(&key, &limit).await.expect("hit");
    assert!(after.allowed && after.remaining == 1, "{after:?}");
    assert!(!store.reset(&format!("{key}-unknown")).await.expect("reset"));
}

pub async fn exactly_the_limit_passes_under_concurrency(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 10, window_ms: 60_000, block_ms: 0 });
    let hits: Vec<_> = (0..50)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.hit(&key, &limit).await.expect("hit").allowed })
        })
        .collect();
    let mut allowed = 0;
    for hit in hits {
        allowed += usize::from(hit.await.expect("task"));
    }
    assert_eq!(allowed, 10);
}

pub async fn subjects_are_independent(store: Arc<dyn RateLimitStore>) {
    let (a, b, limit) = (key(), key(), Limit { limit: 1, window_ms: 60_000, block_ms: 0 });
    assert!(store.hit(&a, &limit).await.expect("hit").allowed);
    assert!(!store.hit(&a, &limit).await.expect("hit").allowed);
    assert!(store.hit(&b, &limit).await.expect("hit").allowed);
}
