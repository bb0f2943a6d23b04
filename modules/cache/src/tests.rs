//! The manager on real stores: coalescing in one process and across two instances, errors not
//! cached, corrupt entries replaced, invalidation, and an unreachable store.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use app_core::testing::{RedisServer, unique_prefix};
use app_redis::{Redis, testing::redis as client};
use serde::{Deserialize, Serialize};

use crate::{
    CacheConfig, CacheManager, CacheMetrics, UserScope,
    store::{CacheStore, MemoryCacheStore, RedisCacheStore},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u32,
    name: String,
}

fn manager(store: Arc<dyn CacheStore>) -> CacheManager {
    CacheManager::new(store, CacheConfig::default(), CacheMetrics::default())
}

fn on(redis: &Redis) -> CacheManager {
    manager(Arc::new(RedisCacheStore::new(redis.clone())))
}

/// A loader that counts its calls and takes a while, like a database query under load.
fn loader(calls: &Arc<AtomicUsize>, name: &str) -> impl Future<Output = Result<Profile, String>> + use<> {
    let (calls, name) = (calls.clone(), name.to_owned());
    async move {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(Profile { id: 1, name })
    }
}

async fn hundred_concurrent_misses(managers: &[Arc<CacheManager>], scope: &str) -> usize {
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (cache, calls, scope) = (managers[i % managers.len()].clone(), calls.clone(), scope.to_owned());
            tokio::spawn(async move {
                let ns = cache.namespace("profile", 1, Duration::from_secs(60));
                cache.get_or_load(&ns, &scope, "p", || loader(&calls, "Ada")).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("loaded").name, "Ada");
    }
    calls.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_load_once_in_memory() {
    let cache = Arc::new(manager(Arc::new(MemoryCacheStore::new())));
    assert_eq!(hundred_concurrent_misses(std::slice::from_ref(&cache), "s").await, 1);
    let stats = &cache.stats()[0];
    assert_eq!((stats.misses, stats.loads), (100, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_load_once_across_two_instances() {
    let redis = client().await;
    let (a, b) = (Arc::new(on(&redis)), Arc::new(on(&redis)));
    assert_eq!(hundred_concurrent_misses(&[a.clone(), b.clone()], "s").await, 1, "one database query in all");
    let loads: u64 = [&a, &b].iter().map(|m| m.stats()[0].loads).sum();
    assert_eq!(loads, 1);
}

#[test]
fn a_user_scope_reads_as_the_user_s_formatted_scope() {
    // The copies' versions are found by parsing the scope back (`u:<id>`), so its text matters.
    for id in [uuid::Uuid::nil(), uuid::Uuid::max(), uuid::Uuid::now_v7()] {
        assert_eq!(&*UserScope::new(id), format!("u:{id}"));
    }
}

#[tokio::test]
async fn hits_after_the_first_load_and_a_bump_reloads() {
    let redis = client().await;
    let cache = on(&redis);
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let p = cache.get_or_load(&ns, "s", "p", || loader(&calls, "Ada")).await.expect("load");
        assert_eq!(p.name, "Ada");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(cache.invalidate(&ns, "s").await);
    let p = cache.get_or_load(&ns, "s", "p", || loader(&calls, "Ada Lovelace")).await.expect("load");
    assert_eq!((p.name.as_str(), calls.load(Ordering::SeqCst)), ("Ada Lovelace", 2));
    let stats = &cache.stats()[0];
    assert_eq!((stats.hits, stats.misses, stats.loads), (2, 2, 2), "{stats:?}");
    assert!((stats.hit_rate() - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn loader_errors_are_returned_and_not_cached() {
    let cache = manager(Arc::new(MemoryCacheStore::new()));
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    let failed: Result<Profile, String> = cache.get_or_load(&ns, "s", "p", || async { Err("db down".into()) }).await;
    assert_eq!(failed.expect_err("the loader failed"), "db down");
    let calls = Arc::new(AtomicUsize::new(0));
    cache.get_or_load(&ns, "s", "p", || loader(&calls, "Ada")).await.expect("the next read loads");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_corrupt_or_foreign_entry_is_a_miss_and_gets_replaced() {
    let server = RedisServer::shared();
    let redis = client().await;
    let cache = on(&redis);
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    // Well-formed for the store (the scope's current generation), but not a Profile.
    assert_eq!(cache.get::<Profile>(&ns, "s", "p").await, None, "a first read gives the scope its generation");
    let reply = server.command(&["GET", &format!("{}cache:profile.v1:{{s}}:~gen", redis.prefix())]);
    let generation = reply.lines().nth(1).expect("a generation").trim().to_owned();
    let key = format!("{}cache:profile.v1:{{s}}:p", redis.prefix());
    server.command(&["SET", &key, &format!("{generation}:\u{1}\u{2}garbage")]);
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(cache.get_or_load(&ns, "s", "p", || loader(&calls, "Ada")).await.expect("load").name, "Ada");
    assert_eq!(cache.get::<Profile>(&ns, "s", "p").await.map(|p| p.name), Some("Ada".into()), "replaced");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn typed_get_set_delete_and_tags() {
    let redis = client().await;
    let cache = on(&redis);
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    let ada = Profile { id: 1, name: "Ada".into() };
    assert_eq!(cache.get::<Profile>(&ns, "s", "p").await, None);
    cache.set(&ns, "s", "p", &ada).await;
    assert_eq!(cache.get::<Profile>(&ns, "s", "p").await, Some(ada.clone()));
    cache.delete(&ns, "s", "p").await;
    assert_eq!(cache.get::<Profile>(&ns, "s", "p").await, None);
    cache.set(&ns, "s", "p", &ada).await;
    cache.set(&ns, "t", "p", &ada).await;
    cache.tag("team", &ns, "s", "p").await;
    cache.tag("team", &ns, "t", "p").await;
    assert_eq!(cache.invalidate_tag("team").await, 2);
    assert_eq!(cache.get::<Profile>(&ns, "t", "p").await, None);
}

#[tokio::test]
async fn a_reader_that_raced_a_writer_stores_nothing() {
    let redis = client().await;
    let cache = on(&redis);
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    // The loader reads the old row; the writer commits and invalidates before it returns.
    let stale = cache
        .get_or_load(&ns, "s", "p", || async {
            let old = Profile { id: 1, name: "old".into() };
            assert!(cache.invalidate(&ns, "s").await);
            Ok::<_, String>(old)
        })
        .await
        .expect("load");
    assert_eq!(stale.name, "old", "this reader saw the old row (it began before the write)");
    let calls = Arc::new(AtomicUsize::new(0));
    let next = cache.get_or_load(&ns, "s", "p", || loader(&calls, "new")).await.expect("load");
    assert_eq!((next.name.as_str(), calls.load(Ordering::SeqCst)), ("new", 1), "the stale value was not cached");
}

#[tokio::test]
async fn an_unreachable_store_means_loading_every_time_never_an_error() {
    // A client whose server is gone: commands cannot be sent.
    let server = RedisServer::start();
    let mut config = app_redis::testing::config(server.url());
    config.key_prefix = unique_prefix();
    let redis = Redis::connect(&config).expect("client");
    assert!(redis.wait_connected(Duration::from_secs(5)).await);
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cache = on(&redis);
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    let calls = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(cache.get_or_load(&ns, "s", "p", || loader(&calls, "Ada")).await.expect("load").name, "Ada");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() < Duration::from_secs(2), "no command timeout per read: {:?}", started.elapsed());
    assert!(!cache.invalidate(&ns, "s").await, "the failed invalidation is reported");
}

#[tokio::test]
async fn a_disabled_cache_always_loads_but_still_invalidates() {
    let store: Arc<dyn CacheStore> = Arc::new(MemoryCacheStore::new());
    let config = CacheConfig { enabled: false, ..CacheConfig::default() };
    let off = CacheManager::new(store.clone(), config, CacheMetrics::default());
    let ns = off.namespace("profile", 1, Duration::from_secs(60));
    let calls = Arc::new(AtomicUsize::new(0));
    off.get_or_load(&ns, "s", "p", || loader(&calls, "Ada")).await.expect("load");
    off.get_or_load(&ns, "s", "p", || loader(&calls, "Ada")).await.expect("load");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let on = manager(store);
    let ns_on = on.namespace("profile", 1, Duration::from_secs(60));
    on.set(&ns_on, "s", "p", &Profile { id: 1, name: "cached".into() }).await;
    assert!(off.invalidate(&ns, "s").await);
    assert_eq!(on.get::<Profile>(&ns_on, "s", "p").await, None, "the write made while off still invalidated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_write_never_takes_a_value_loaded_before_it() {
    let redis = client().await;
    let cache = Arc::new(on(&redis));
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    // A slow load of the old row is in flight...
    let slow = {
        let (cache, ns) = (cache.clone(), ns.clone());
        tokio::spawn(async move {
            cache
                .get_or_load(&ns, "s", "p", || async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, String>(Profile { id: 1, name: "old".into() })
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...when a write commits and invalidates. A read that starts now must not join that load.
    assert!(cache.invalidate(&ns, "s").await);
    let calls = Arc::new(AtomicUsize::new(0));
    let fresh = cache.get_or_load(&ns, "s", "p", || loader(&calls, "new")).await.expect("load");
    assert_eq!((fresh.name.as_str(), calls.load(Ordering::SeqCst)), ("new", 1));
    assert_eq!(slow.await.expect("task").expect("load").name, "old", "the earlier reader got what it began with");
    assert_eq!(cache.get::<Profile>(&ns, "s", "p").await.map(|p| p.name), Some("new".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_filler_does_not_hold_other_readers_up() {
    let redis = client().await;
    let (a, b) = (on(&redis), on(&redis));
    let ns_a = a.namespace("profile", 1, Duration::from_secs(60));
    let ns_b = b.namespace("profile", 1, Duration::from_secs(60));
    // Instance A starts filling, then its request goes away mid-load.
    let filling = a.get_or_load(&ns_a, "s", "p", || async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, String>(Profile { id: 1, name: "never".into() })
    });
    assert!(tokio::time::timeout(Duration::from_millis(200), filling).await.is_err());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Instance B does not wait out the fill lock's TTL (5 s) or the fill wait (2 s).
    let started = std::time::Instant::now();
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(b.get_or_load(&ns_b, "s", "p", || loader(&calls, "Ada")).await.expect("load").name, "Ada");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

/// The real Redis store, except that writes and lock releases hang for `hang` and then fail, as
/// on a Redis that froze right after the read and the lock (the command timeout ends them).
struct FreezesAfterTheLock {
    inner: RedisCacheStore,
    hang: Duration,
}

#[async_trait::async_trait]
impl CacheStore for FreezesAfterTheLock {
    async fn read(&self, key: crate::store::EntryKey<'_>) -> Result<crate::store::Read, app_redis::RedisError> {
        self.inner.read(key).await
    }
    async fn write(
        &self,
        _: crate::store::EntryKey<'_>,
        _: &[u8],
        _: Duration,
        _: Option<u64>,
    ) -> Result<bool, app_redis::RedisError> {
        tokio::time::sleep(self.hang).await;
        Err(app_redis::RedisError::Unavailable("timed out".into()))
    }
    async fn delete(&self, key: crate::store::EntryKey<'_>) -> Result<bool, app_redis::RedisError> {
        self.inner.delete(key).await
    }
    async fn bump(
        &self,
        namespace: &str,
        scope: &str,
        ttl: Duration,
        version: Option<&str>,
    ) -> Result<u64, app_redis::RedisError> {
        self.inner.bump(namespace, scope, ttl, version).await
    }
    async fn try_lock(
        &self,
        key: crate::store::EntryKey<'_>,
        generation: u64,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, app_redis::RedisError> {
        self.inner.try_lock(key, generation, token, ttl).await
    }
    async fn unlock(&self, _: crate::store::EntryKey<'_>, _: u64, _: &str) -> Result<(), app_redis::RedisError> {
        tokio::time::sleep(self.hang).await;
        Err(app_redis::RedisError::Unavailable("timed out".into()))
    }
    async fn tag(
        &self,
        tag: &str,
        key: crate::store::EntryKey<'_>,
        ttl: Duration,
    ) -> Result<(), app_redis::RedisError> {
        self.inner.tag(tag, key, ttl).await
    }
    async fn invalidate_tag(&self, tag: &str) -> Result<u64, app_redis::RedisError> {
        self.inner.invalidate_tag(tag).await
    }
    fn is_available(&self) -> bool {
        self.inner.is_available()
    }
}

#[tokio::test]
async fn a_store_that_freezes_after_the_lock_delays_a_miss_by_at_most_a_second() {
    let redis = client().await;
    let hang = Duration::from_secs(3);
    let cache = manager(Arc::new(FreezesAfterTheLock { inner: RedisCacheStore::new(redis.clone()), hang }));
    let ns = cache.namespace("profile", 1, Duration::from_secs(60));
    let calls = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let value = cache.get_or_load(&ns, "s", "p", || loader(&calls, "Ada")).await.expect("loaded from the database");
    let took = started.elapsed();
    assert_eq!(value.name, "Ada");
    // The read and the lock answered; the write and the release hang: the answer waits for them
    // one second at most (not 2 x 3 s), and they go on in the background.
    assert!(took < Duration::from_millis(1900), "{took:?}");
}

/// Users' entries kept in process (`with_copies`): served while the request's version of the
/// user stands, read again once an invalidation on any instance moves it on, and read again
/// after `Copies::MAX_AGE` even when a change did not move it (an earlier build's write).
#[tokio::test]
async fn users_entries_are_kept_in_process_while_their_version_stands() {
    use app_core::versions::{ReadVersion, UserVersions, scope};

    let server = RedisServer::shared();
    let redis = client().await;
    let versions = Arc::new(UserVersions::default());
    redis.read_user_versions(&versions);
    let (a, b) = (on(&redis).with_copies(versions.clone()), on(&redis).with_copies(versions.clone()));
    let (ns_a, ns_b) = (
        a.user_namespace("profile", 1, Duration::from_secs(60)),
        b.user_namespace("profile", 1, Duration::from_secs(60)),
    );
    let user = uuid::Uuid::now_v7();
    let (user_scope, version_key) = (format!("u:{user}"), versions.key(user).expect("versions are read"));
    let base = format!("{}cache:profile.v1:{{{user_scope}}}:", redis.prefix());
    let calls = Arc::new(AtomicUsize::new(0));
    // What the request screen does: read the version, then run the request with it.
    let read = |name: &'static str| {
        let version = server.command(&["GET", &version_key]).lines().nth(1).and_then(|v| v.parse().ok());
        let load = b.get_or_load(&ns_b, &user_scope, "p", || loader(&calls, name));
        async move { scope(Some(ReadVersion { user, version }), load).await.expect("read").name }
    };
    assert!(a.invalidate(&ns_a, &user_scope).await, "the version exists from the first change on");

    assert_eq!(read("Ada").await, "Ada");
    server.command(&["DEL", &format!("{base}p")]);
    assert_eq!(read("Bob").await, "Ada", "the copy answers while the version stands");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    assert!(a.invalidate(&ns_a, &user_scope).await);
    assert_eq!(read("Bob").await, "Bob", "another instance's invalidation moved the version on");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A change that leaves the version as it was: the copy lives out its age, no more.
    server.command(&["INCR", &format!("{base}~gen")]);
    assert_eq!(read("Carol").await, "Bob");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(read("Carol").await, "Carol", "a copy older than its bound is read again");
}
