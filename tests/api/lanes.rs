//! The event loops connections are served on (`server.threads`): each talks to Redis over a
//! connection of its own, and `0` keeps the shared runtime, which talks through the pool.

use std::time::{Duration, Instant};

use app_core::{config::ServerConfig, testing::RedisServer};

use crate::support::{Backend, app};

fn connected_clients(redis: &RedisServer) -> u64 {
    let info = redis.command(&["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.trim().strip_prefix("connected_clients:")?.parse().ok())
        .expect("INFO clients has connected_clients")
}

/// The connection count once it holds still for half a second (connections the app opens in the
/// background, such as pub/sub's, may still be on their way), with `CLIENT LIST` for a failure's
/// message.
async fn settled_clients(redis: &RedisServer) -> (u64, String) {
    let (mut last, mut since) = (connected_clients(redis), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(10);
    while since.elapsed() < Duration::from_millis(500) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = connected_clients(redis);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    (last, redis.command(&["CLIENT", "LIST"]))
}

/// Redis connections of an app with `threads` event loops after guarded reads on 4 connections.
async fn redis_connections_serving(threads: usize) -> (u64, String) {
    let redis = RedisServer::start();
    let app = app()
        .backend(Backend::Redis(redis.url()))
        .config(move |c| {
            c.get_mut::<ServerConfig>().threads = Some(threads);
            c.get_mut::<app_jobs::JobsConfig>().workers = false;
        })
        .spawn()
        .await;
    let (_, tokens) = app.user().await;
    // A client per request: a connection each, handed to the loops in turn.
    for _ in 0..2 {
        let reads = (0..4).map(|_| {
            let (url, token) = (format!("{}/api/v1/users/me", app.base), tokens.access.clone());
            async move { reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("sent").status() }
        });
        for status in futures::future::join_all(reads).await {
            assert_eq!(status, 200);
        }
    }
    settled_clients(&redis).await
}

#[tokio::test]
async fn each_event_loop_talks_to_redis_over_a_connection_of_its_own() {
    let (shared, shared_list) = redis_connections_serving(0).await;
    let (lanes, lanes_list) = redis_connections_serving(2).await;
    assert_eq!(
        lanes,
        shared + 2,
        "two loops, two more connections\nshared runtime:\n{shared_list}\nloops:\n{lanes_list}"
    );
}
