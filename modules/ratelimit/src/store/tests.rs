//! The contract on both adapters (Redis on a real server and a real cluster), and the TTLs.

use std::sync::Arc;

use app_core::testing::RedisServer;
use app_redis::testing::{redis as client, redis_cluster as cluster_client};

use super::*;

async fn memory() -> Arc<dyn RateLimitStore> {
    Arc::new(MemoryRateLimitStore::new())
}

async fn redis() -> Arc<dyn RateLimitStore> {
    Arc::new(RedisRateLimitStore::new(client().await))
}

async fn redis_cluster() -> Arc<dyn RateLimitStore> {
    Arc::new(RedisRateLimitStore::new(cluster_client().await))
}

app_core::contract_tests! {
    suite = contract,
    adapters = { memory => memory, redis => redis, redis_cluster => redis_cluster },
    tests = [
        a_burst_of_limit_passes_then_requests_are_refused,
        the_allowance_recovers_as_the_window_moves,
        a_block_outlasts_the_window_and_ends_by_itself,
        peeking_counts_nothing_and_reset_forgets,
        exactly_the_limit_passes_under_concurrency,
        subjects_are_independent,
        a_fractional_interval_admits_exactly_the_limit,
        the_generic_and_the_compiled_script_count_alike,
    ],
}

#[tokio::test]
async fn every_rate_limit_key_carries_a_ttl() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisRateLimitStore::new(redis.clone());
    let limit = store.compile(Limit { limit: 1, window_ms: 60_000, block_ms: 30_000 });
    let ttl = |key: &str| server.pttl(&format!("{}{key}", redis.prefix()));
    store.hit("rl:ttl:{ip:192.0.2.1}", &limit).await.expect("hit");
    let state = ttl("rl:ttl:{ip:192.0.2.1}");
    assert!(state > 0 && state <= 60_001, "the state carries a TTL of at most the window ({state})");
    store.hit("rl:ttl:{ip:192.0.2.1}", &limit).await.expect("hit");
    let block = ttl("rl:ttl:{ip:192.0.2.1}");
    assert!(block > 0 && block <= 30_000, "the block carries its own TTL ({block})");
}

#[tokio::test]
async fn the_arrival_time_is_stored_as_8_bytes_and_a_decimal_one_is_still_read() {
    let redis = client().await;
    let store = RedisRateLimitStore::new(redis.clone());
    let limit = store.compile(Limit { limit: 3, window_ms: 60_000, block_ms: 0 });
    let key = format!("rl:test:{{{}}}", app_core::testing::unique_prefix());
    store.hit(&key, &limit).await.expect("hit");
    let stored = redis.get(&redis.key(&key)).await.expect("get").expect("the state exists");
    assert_eq!(stored.len(), 8, "a packed double, not decimal text");

    // As earlier versions wrote it: the arrival time in ms as decimal text, here two intervals
    // (40 s) ahead of now, so one request of the three is left.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let decimal = format!("{}.250", now_ms + 40_000);
    redis.set(&redis.key(&key), decimal.as_bytes(), std::time::Duration::from_secs(60), false).await.expect("set");
    let last = store.hit(&key, &limit).await.expect("hit");
    assert!(last.allowed && last.remaining == 0, "the decimal state counted two requests: {last:?}");
    assert!(!store.hit(&key, &limit).await.expect("hit").allowed);
}
