//! The contract on both adapters (Redis on a real server and a real cluster), and the TTLs.

use std::{sync::Arc, time::Duration};

use app_core::testing::RedisServer;
use app_redis::testing::{redis as client, redis_cluster as cluster_client};

use super::*;

async fn memory() -> Arc<dyn LockStore> {
    Arc::new(MemoryLockStore::new())
}

async fn redis() -> Arc<dyn LockStore> {
    Arc::new(RedisLockStore::new(client().await))
}

async fn redis_cluster() -> Arc<dyn LockStore> {
    Arc::new(RedisLockStore::new(cluster_client().await))
}

app_core::contract_tests! {
    suite = contract,
    adapters = { memory => memory, redis => redis, redis_cluster => redis_cluster },
    tests = [
        one_holder_at_a_time_with_growing_fencing_tokens,
        fifty_concurrent_acquires_have_exactly_one_winner,
        only_the_holders_token_checks_extends_or_releases,
        a_lease_expires_by_itself_and_the_next_fencing_token_is_larger,
        the_holder_is_reported_with_its_owner,
        resources_are_independent,
    ],
}

#[tokio::test]
async fn the_lock_and_its_fencing_counter_carry_ttls() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisLockStore::new(redis.clone());
    store.acquire("item:1", "h", "alice", Duration::from_secs(30)).await.expect("acquire").expect("free");
    let ttl = |suffix: &str| server.pttl(&format!("{}{suffix}", redis.prefix()));
    let lock = ttl("lock:{item:1}");
    assert!(lock > 0 && lock <= 30_000, "{lock}");
    let fence = ttl("lock:{item:1}:fence");
    assert!(fence > 0 && fence as u128 <= FENCE_TTL.as_millis(), "{fence}");
}

#[tokio::test]
async fn fencing_keeps_growing_after_the_counter_expired() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisLockStore::new(redis.clone());
    let first =
        store.acquire("item:2", "h", "alice", Duration::from_millis(100)).await.expect("acquire").expect("free");
    server.command(&["DEL", &format!("{}lock:{{item:2}}:fence", redis.prefix())]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = store.acquire("item:2", "h2", "bob", Duration::from_secs(5)).await.expect("acquire").expect("free");
    assert!(second > first, "time-seeded: {first} then {second}");
}
