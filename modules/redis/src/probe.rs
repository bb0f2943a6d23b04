//! The Redis readiness check behind `/health/ready`.

use app_core::readiness::{Check, ReadinessCheck};
use async_trait::async_trait;

use crate::SharedState;

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

/// Shared state's readiness: `PING` and `INFO` on Redis (latency, version, role, memory,
/// clients, uptime, eviction policy); always up on the memory backend.
pub struct RedisCheck(pub SharedState);

#[async_trait]
impl ReadinessCheck for RedisCheck {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Check {
        let SharedState::Redis(redis) = &self.0 else { return Check::up("memory", std::time::Duration::ZERO) };
        let (ping, info) = tokio::join!(redis.ping(), redis.info());
        match (ping, info) {
            (Ok(latency), Ok(info)) => {
                let info = RedisInfo::parse(&info);
                Check {
                    version: Some(info.version),
                    role: Some(info.role),
                    used_memory: Some(info.used_memory),
                    connected_clients: Some(info.connected_clients),
                    uptime_seconds: Some(info.uptime_seconds),
                    maxmemory_policy: Some(info.maxmemory_policy),
                    ..Check::up("redis", latency)
                }
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %err, "redis health probe failed");
                let error =
                    if err.is_unavailable() { "unreachable or not answering" } else { "answered with an error" };
                Check::down("redis", error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use app_core::readiness::CheckStatus;

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
        let check = RedisCheck(SharedState::Redis(crate::testing::redis().await)).check().await;
        assert_eq!(check.status, CheckStatus::Ok, "{check:?}");
        assert!(check.version.as_deref().is_some_and(|v| v.starts_with(char::is_numeric)), "{check:?}");
        assert_eq!(check.role.as_deref(), Some("master"));
        assert!(check.connected_clients >= Some(1));
    }
}
