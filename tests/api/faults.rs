//! Every request within one Redis command timeout (+ 1 s) of a Redis fault: a cached library
//! read while Redis is frozen (SIGSTOP) on one node with PostgreSQL (when `TEST_DATABASE_URL` is
//! set), while only the cache's own Redis is frozen (the session check passes, so the read goes
//! through the cache's failure path to the database), and on a Redis Cluster whose every node is
//! frozen, then killed.

use std::time::{Duration, Instant};

use app_core::testing::{RedisCluster, RedisServer, TestDatabase, eventually};
use serde_json::json;

use crate::support::{Backend, TestApp, app};

/// The bound on any answer: the tests' command timeout (750 ms, set by the harness) + 1 s.
const BOUND: Duration = Duration::from_millis(750 + 1000);

/// A user with one library item, read once so it is cached.
async fn cached_item(app: &TestApp) -> (String, String) {
    let (_, tokens) = app.user().await;
    let item = app.song(&tokens.access, "Cached").await;
    let id = item["id"].as_str().expect("id").to_owned();
    assert_eq!(app.get_item(&tokens.access, &id).await.status(), 200);
    assert_eq!(app.get_item(&tokens.access, &id).await.status(), 200, "now from the cache");
    (tokens.access, id)
}

/// Reads the item `n` times; each answer comes within [`BOUND`] and is one of `allowed`.
async fn every_read_in_time(app: &TestApp, token: &str, id: &str, n: usize, allowed: &[u16]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let status = app.get_item(token, id).await.status().as_u16();
        let took = started.elapsed();
        assert!(took < BOUND, "answered {status} after {took:?}, beyond {BOUND:?}");
        assert!(allowed.contains(&status), "{status}");
        statuses.push(status);
    }
    statuses
}

#[tokio::test]
async fn a_cached_read_on_a_frozen_redis_answers_within_a_command_timeout_and_a_second() {
    let redis = RedisServer::start();
    let database = TestDatabase::postgres().await.unwrap_or_else(TestDatabase::sqlite);
    let app = app().backend(Backend::Redis(redis.url())).database(database).spawn().await;
    let (token, id) = cached_item(&app).await;
    redis.freeze();
    every_read_in_time(&app, &token, &id, 5, &[503]).await;
    redis.thaw();
}

#[tokio::test]
async fn with_only_the_cache_redis_frozen_a_read_falls_back_to_the_database_in_time() {
    let (redis, cache) = (RedisServer::start(), RedisServer::start());
    let cache_url = cache.url();
    let app = app()
        .backend(Backend::Redis(redis.url()))
        .config(move |c| c.get_mut::<app_cache::CacheConfig>().redis_url = Some(cache_url))
        .spawn()
        .await;
    let (token, id) = cached_item(&app).await;
    cache.freeze();
    every_read_in_time(&app, &token, &id, 5, &[200]).await;
    // A miss (another item) takes the fill path: read, lock, load, write, all bounded.
    let other = app.song(&token, "Uncached").await;
    let started = Instant::now();
    assert_eq!(app.get_item(&token, other["id"].as_str().expect("id")).await.status(), 200);
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    cache.thaw();
}

#[tokio::test]
async fn a_cached_read_on_a_frozen_then_dead_cluster_answers_within_a_command_timeout_and_a_second() {
    let cluster = RedisCluster::start();
    let app = app().backend(Backend::Redis(cluster.url())).spawn().await;
    let ready = eventually(Duration::from_secs(20), || async { app.ready().await.status() == 200 }).await;
    assert!(ready, "the app reaches the cluster");
    let (token, id) = cached_item(&app).await;
    let search = app.page(&token, "q=cached").await;
    assert_eq!(search["total"], json!(1));
    for node in cluster.nodes() {
        node.freeze();
    }
    every_read_in_time(&app, &token, &id, 4, &[503]).await;
    for node in cluster.nodes() {
        node.thaw();
        node.stop();
    }
    every_read_in_time(&app, &token, &id, 4, &[503]).await;
}
