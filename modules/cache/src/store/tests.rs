//! The contract on both adapters (Redis on a real server and a real cluster), plus what only
//! Redis can show: corrupt entries, TTLs on every key.

use std::{sync::Arc, time::Duration};

use app_core::testing::RedisServer;
use app_redis::testing::{redis as client, redis_cluster as cluster_client};

use super::*;

async fn memory() -> Arc<dyn CacheStore> {
    Arc::new(MemoryCacheStore::new())
}

async fn redis() -> Arc<dyn CacheStore> {
    Arc::new(RedisCacheStore::new(client().await))
}

async fn redis_cluster() -> Arc<dyn CacheStore> {
    Arc::new(RedisCacheStore::new(cluster_client().await))
}

app_core::contract_tests! {
    suite = contract,
    adapters = { memory => memory, redis => redis, redis_cluster => redis_cluster },
    tests = [
        a_written_entry_reads_back_under_its_generation,
        a_bump_hides_every_entry_of_the_scope_only,
        a_write_under_a_dead_generation_is_refused,
        entries_expire_after_their_ttl,
        an_expired_generation_never_revives_a_dead_entry,
        every_write_keeps_the_generation_alive,
        delete_removes_one_entry,
        the_fill_lock_has_one_holder_and_only_its_token_releases_it,
        a_fill_lock_expires_by_itself,
        a_tag_invalidates_its_entries_across_scopes,
    ],
}

fn full(redis: &app_redis::Redis, suffix: &str) -> String {
    format!("{}{suffix}", redis.prefix())
}

#[tokio::test]
async fn a_corrupt_entry_reads_as_absent() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisCacheStore::new(redis.clone());
    let key = EntryKey { namespace: "test.v1", scope: "s", item: "a", generation_ttl: Duration::from_secs(60) };
    for garbage in ["no header at all", "x:bad generation", "7:from a generation that never was", ""] {
        server.command(&["SET", &full(&redis, "cache:test.v1:{s}:a"), garbage]);
        assert_eq!(store.read(key).await.expect("read").value, None, "{garbage:?}");
    }
    assert!(store.write(key, b"fixed", Duration::from_secs(60), None).await.expect("write"));
    assert_eq!(store.read(key).await.expect("read").value, Some(b"fixed".to_vec()));
}

#[tokio::test]
async fn every_cache_key_carries_a_ttl() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisCacheStore::new(redis.clone());
    let minute = Duration::from_secs(60);
    let key = EntryKey { namespace: "test.v1", scope: "s", item: "a", generation_ttl: minute };
    store.write(key, b"v", minute, None).await.expect("write");
    store.bump("test.v1", "other", minute, None).await.expect("bump");
    assert!(store.try_lock(key, 42, "t", minute).await.expect("lock"));
    store.tag("t1", key, minute).await.expect("tag");
    for suffix in [
        "cache:test.v1:{s}:a",
        "cache:test.v1:{s}:~gen",
        "cache:test.v1:{other}:~gen",
        "cache:test.v1:{s}:a~fill:42",
        "cache:tag:{t1}",
    ] {
        let ttl = server.pttl(&full(&redis, suffix));
        assert!(ttl > 0 && ttl <= 60_000, "{suffix}: {ttl}");
    }
}

#[tokio::test]
async fn a_bump_of_a_users_scope_moves_the_users_version_on_and_keeps_its_longer_ttl() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisCacheStore::new(redis.clone());
    let user = uuid::Uuid::now_v7();
    let (scope, version) = (format!("u:{user}"), redis.user_version_key(&user));
    // A bulk reply: `$<len>`, then the value.
    let version_of = || server.command(&["GET", &version]).lines().nth(1)?.parse::<i64>().ok();
    store.bump("test.v1", &scope, Duration::from_secs(60), Some(&version)).await.expect("bump");
    let first = version_of().expect("the bump made the version");
    assert!((1..=60_000).contains(&server.pttl(&version)));
    server.command(&["PEXPIRE", &version, "3600000"]);
    store.bump("test.v1", &scope, Duration::from_secs(60), Some(&version)).await.expect("bump");
    assert!(version_of().expect("version") > first, "moved on");
    assert!(server.pttl(&version) > 60_000, "the longer TTL stays");
    store.bump("test.v1", &scope, Duration::from_secs(60), None).await.expect("bump");
    assert!(server.pttl(&version) > 60_000);
}
