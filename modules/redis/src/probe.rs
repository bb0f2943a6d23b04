//! The Redis health probe behind `/health/ready`.

use std::time::Duration;

use async_trait::async_trait;
use shaku::Interface;

use crate::Redis;

/// What Redis reported about itself (from `INFO`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisInfo {
    /// `redis_version`.
    pub version: String,
    /// `role`: `master` or `slave`.
    pub role: String,
    /// `used_memory` in bytes.
    pub used_memory: u64,
    /// `connected_clients`.
    pub connected_clients: u64,
    /// `uptime_in_seconds`.
    pub uptime_seconds: u64,
    /// `maxmemory_policy`; shared state wants `noeviction`.
    pub maxmemory_policy: String,
}

impl RedisInfo {
    /// Parses the fields we report from `INFO` text.
    pub fn parse(info: &str) -> Self {
        let mut out = RedisInfo::default();
        for line in info.lines() {
            let Some((key, value)) = line.trim().split_once(':') else {
                continue;
            };
            match key {
                "redis_version" => out.version = value.to_owned(),
                "role" => out.role = value.to_owned(),
                "used_memory" => out.used_memory = value.parse().unwrap_or(0),
                "connected_clients" => out.connected_clients = value.parse().unwrap_or(0),
                "uptime_in_seconds" => out.uptime_seconds = value.parse().unwrap_or(0),
                "maxmemory_policy" => out.maxmemory_policy = value.to_owned(),
                _ => {}
            }
        }
        out
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisProbe {
    /// `redis` or `memory`.
    pub backend: &'static str,
    /// Whether shared state is usable right now.
    pub up: bool,
    /// PING round trip.
    pub latency: Option<Duration>,
    /// Server facts (Redis backend, when up).
    pub info: Option<RedisInfo>,
    /// Why it is down, in words safe to show (no addresses).
    pub error: Option<String>,
}

/// The health port of the shared-state backend.
#[async_trait]
pub trait RedisHealth: Interface {
    /// Probes the backend: PING latency plus `INFO` facts, bounded by the command timeout.
    async fn probe(&self) -> RedisProbe;
}

/// Probes a real Redis.
pub struct RedisServerHealth {
    redis: Redis,
}

impl RedisServerHealth {
    /// Probes `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }
}

#[async_trait]
impl RedisHealth for RedisServerHealth {
    async fn probe(&self) -> RedisProbe {
        // Both commands go out together and share one round trip on the pipelined connection.
        let (ping, info) = tokio::join!(self.redis.ping(), self.redis.info());
        match (ping, info) {
            (Ok(latency), Ok(info)) => RedisProbe {
                backend: "redis",
                up: true,
                latency: Some(latency),
                info: Some(RedisInfo::parse(&info)),
                error: None,
            },
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %err, "redis health probe failed");
                let error =
                    if err.is_unavailable() { "unreachable or not answering" } else { "answered with an error" };
                RedisProbe { backend: "redis", up: false, latency: None, info: None, error: Some(error.into()) }
            }
        }
    }
}

/// The memory backend is always up.
pub struct MemoryHealth;

#[async_trait]
impl RedisHealth for MemoryHealth {
    async fn probe(&self) -> RedisProbe {
        RedisProbe { backend: "memory", up: true, latency: Some(Duration::ZERO), info: None, error: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reported_info_fields() {
        let info = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:42\r\n# Clients\r\nconnected_clients:3\r\n\
                    # Memory\r\nused_memory:1048576\r\nmaxmemory_policy:noeviction\r\n# Replication\r\nrole:master\r\n";
        let parsed = RedisInfo::parse(info);
        assert_eq!(
            parsed,
            RedisInfo {
                version: "7.0.15".into(),
                role: "master".into(),
                used_memory: 1_048_576,
                connected_clients: 3,
                uptime_seconds: 42,
                maxmemory_policy: "noeviction".into(),
            }
        );
    }

    #[tokio::test]
    async fn a_live_server_reports_up_with_its_facts() {
        let probe = RedisServerHealth::new(crate::testing::redis().await).probe().await;
        assert!(probe.up, "{probe:?}");
        let info = probe.info.expect("info");
        assert!(info.version.starts_with(char::is_numeric), "{info:?}");
        assert_eq!(info.role, "master");
        assert!(info.connected_clients >= 1);
    }
}
