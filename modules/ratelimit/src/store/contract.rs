//! The contract every [`RateLimitStore`] adapter passes.

use std::{sync::Arc, time::Duration};

use super::*;

fn key() -> String {
    format!("rl:test:{{{}}}", app_core::testing::unique_prefix())
}

pub async fn a_burst_of_limit_passes_then_requests_are_refused(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 3, window_ms: 60_000, block_ms: 0 });
    let compiled = store.compile(limit);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let o = store.hit(&key, &compiled).await.expect("hit");
        assert!(o.allowed);
        remaining.push(o.remaining);
    }
    assert_eq!(remaining, [2, 1, 0]);
    let refused = store.hit(&key, &compiled).await.expect("hit");
    assert!(!refused.allowed && !refused.blocked);
    // One emission interval (20 s) until the next request may pass.
    assert!((19_000..=20_000).contains(&refused.retry_after_ms), "{refused:?}");
    assert!((59_000..=60_000).contains(&refused.reset_ms), "{refused:?}");
}

pub async fn the_allowance_recovers_as_the_window_moves(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 2, window_ms: 2_000, block_ms: 0 });
    let compiled = store.compile(limit);
    assert!(store.hit(&key, &compiled).await.expect("hit").allowed);
    assert!(store.hit(&key, &compiled).await.expect("hit").allowed);
    let refused = store.hit(&key, &compiled).await.expect("hit");
    assert!(!refused.allowed);
    tokio::time::sleep(Duration::from_millis(refused.retry_after_ms + 50)).await;
    assert!(store.hit(&key, &compiled).await.expect("hit").allowed, "one interval later, one more passes");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let whole = store.peek(&key, &limit).await.expect("peek");
    assert_eq!(whole.remaining, 2, "a whole window later the allowance is whole again");
}

pub async fn a_block_outlasts_the_window_and_ends_by_itself(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 2, window_ms: 60_000, block_ms: 900 });
    let compiled = store.compile(limit);
    assert!(store.hit(&key, &compiled).await.expect("hit").allowed);
    assert!(store.hit(&key, &compiled).await.expect("hit").allowed);
    let refused = store.hit(&key, &compiled).await.expect("hit");
    assert!(!refused.allowed && refused.blocked);
    assert_eq!(refused.retry_after_ms, 900, "retry after the block, not the window");
    assert_eq!(refused.reset_ms, 900, "the allowance is back when the block ends");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = store.hit(&key, &compiled).await.expect("hit");
    assert!(!still.allowed && still.blocked, "the block holds");
    assert!(still.retry_after_ms < 900 && still.retry_after_ms > 0, "the block counts down: {still:?}");
    let peeked = store.peek(&key, &limit).await.expect("peek");
    assert!(peeked.blocked && !peeked.allowed);
    tokio::time::sleep(Duration::from_millis(still.retry_after_ms + 50)).await;
    let released = store.hit(&key, &compiled).await.expect("hit");
    assert!(released.allowed && released.remaining == 1, "released with the whole allowance: {released:?}");
}

pub async fn peeking_counts_nothing_and_reset_forgets(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 2, window_ms: 60_000, block_ms: 60_000 });
    let compiled = store.compile(limit);
    let fresh = store.peek(&key, &limit).await.expect("peek");
    assert!(fresh.allowed && fresh.remaining == 2 && !fresh.blocked);
    store.hit(&key, &compiled).await.expect("hit");
    assert_eq!(store.peek(&key, &limit).await.expect("peek").remaining, 1);
    assert_eq!(store.peek(&key, &limit).await.expect("peek").remaining, 1, "peeking counts nothing");
    store.hit(&key, &compiled).await.expect("hit");
    assert!(store.hit(&key, &compiled).await.expect("hit").blocked);
    assert!(store.reset(&key, &limit).await.expect("reset"));
    let after = store.hit(&key, &compiled).await.expect("hit");
    assert!(after.allowed && after.remaining == 1, "{after:?}");
    assert!(!store.reset(&format!("{key}-unknown"), &limit).await.expect("reset"));
}

pub async fn exactly_the_limit_passes_under_concurrency(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 10, window_ms: 60_000, block_ms: 0 });
    let compiled = store.compile(limit);
    let hits: Vec<_> = (0..50)
        .map(|_| {
            let (store, key, compiled) = (store.clone(), key.clone(), compiled.clone());
            tokio::spawn(async move { store.hit(&key, &compiled).await.expect("hit").allowed })
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
    let compiled = store.compile(limit);
    assert!(store.hit(&a, &compiled).await.expect("hit").allowed);
    assert!(!store.hit(&a, &compiled).await.expect("hit").allowed);
    assert!(store.hit(&b, &compiled).await.expect("hit").allowed);
}

pub async fn a_fractional_interval_admits_exactly_the_limit(store: Arc<dyn RateLimitStore>) {
    // 7 per 10 s: an emission interval of 1428.571.. ms, which no stored form may round off.
    let (key, limit) = (key(), Limit { limit: 7, window_ms: 10_000, block_ms: 0 });
    let compiled = store.compile(limit);
    let mut remaining = Vec::new();
    for _ in 0..8 {
        let o = store.hit(&key, &compiled).await.expect("hit");
        remaining.push(o.allowed.then_some(o.remaining));
    }
    assert_eq!(remaining, [Some(6), Some(5), Some(4), Some(3), Some(2), Some(1), Some(0), None]);
}

pub async fn the_generic_and_the_compiled_script_count_alike(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 3, window_ms: 60_000, block_ms: 0 });
    let (compiled, generic) = (store.compile(limit), CompiledLimit::from(limit));
    let mut remaining = Vec::new();
    for compiled_or_not in [&generic, &compiled, &generic] {
        remaining.push(store.hit(&key, compiled_or_not).await.expect("hit").remaining);
    }
    assert_eq!(remaining, [2, 1, 0], "one count, whichever form counted it");
    assert!(!store.hit(&key, &compiled).await.expect("hit").allowed);
    assert!(!store.hit(&key, &generic).await.expect("hit").allowed);
}

pub async fn a_refund_takes_back_one_admitted_request_and_nothing_else(store: Arc<dyn RateLimitStore>) {
    let (key, limit) = (key(), Limit { limit: 2, window_ms: 60_000, block_ms: 60_000 });
    let compiled = store.compile(limit);
    store.refund(&key, &limit).await.expect("refund");
    assert_eq!(store.peek(&key, &limit).await.expect("peek").remaining, 2, "no state: nothing to take back");
    assert_eq!(store.hit(&key, &compiled).await.expect("hit").remaining, 1);
    assert_eq!(store.hit(&key, &compiled).await.expect("hit").remaining, 0);
    store.refund(&key, &limit).await.expect("refund");
    let back = store.hit(&key, &compiled).await.expect("hit");
    assert!(back.allowed && back.remaining == 0, "the refunded request's room is free again: {back:?}");
    let blocked = store.hit(&key, &compiled).await.expect("hit");
    assert!(blocked.blocked, "{blocked:?}");
    store.refund(&key, &limit).await.expect("refund");
    let still = store.peek(&key, &limit).await.expect("peek");
    assert!(still.blocked && still.retry_after_ms > 59_000, "a refund never shortens a block: {still:?}");
}
