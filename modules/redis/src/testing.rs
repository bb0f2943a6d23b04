//! Test helpers: clients on the shared test `redis-server` and on a shared test cluster, each
//! with a key prefix of its own.

use std::time::Duration;

use std::sync::OnceLock;

use app_core::testing::{RedisCluster, RedisServer, unique_prefix};

use crate::{Redis, RedisConfig};

/// A config for the server at `url`, with a prefix of its own and short timeouts.
pub fn config(url: String) -> RedisConfig {
    RedisConfig {
        url: Some(url),
        key_prefix: unique_prefix(),
        command_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        unresponsive_timeout: Duration::from_secs(1),
        reconnect_max_delay: Duration::from_millis(200),
        ..RedisConfig::default()
    }
}

/// A connected client on the shared test server, with a key prefix no other test uses.
pub async fn redis() -> Redis {
    let redis = Redis::connect(&config(RedisServer::shared().url())).expect("client");
    assert!(redis.wait_connected(Duration::from_secs(5)).await, "test redis-server is not answering");
    redis
}

/// A connected client on a three-node Redis Cluster shared by this test binary.
pub async fn redis_cluster() -> Redis {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    let url = CLUSTER.get_or_init(RedisCluster::start).url();
    let redis = Redis::connect(&config(url)).expect("client");
    assert!(redis.wait_connected(Duration::from_secs(10)).await, "the test cluster is not answering");
    redis
}
