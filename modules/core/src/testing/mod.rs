//! Test support shared by module tests and the black-box tests in `tests/`.
//!
//! Everything here talks to real components: [`RedisServer`] runs a real `redis-server` on a
//! free loopback port, [`TestDatabase`] makes a fresh SQLite file or PostgreSQL database per
//! test. Nothing here mocks Redis or SQL.

mod contract;
mod database;
mod redis_cluster;
mod redis_server;

pub use database::TestDatabase;
pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;

use std::time::Duration;

/// A key prefix no other test uses, so tests sharing one Redis never see each other's keys.
pub fn unique_prefix() -> String {
    format!("t{}:", uuid::Uuid::new_v4().simple())
}

/// Polls `check` every 25 ms until it returns true or `timeout` passes; returns the last answer.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
