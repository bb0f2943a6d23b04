//! The readiness checks.

use std::{sync::Arc, time::Duration};

use app_core::metrics::Metrics;
use app_database::SqlDatabase;
use app_redis::RedisHealth;
use async_trait::async_trait;
use poem_openapi::{Enum, Object};
use shaku::{Component, Interface};

/// Whether a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The dependency answered.
    Ok,
    /// The dependency did not answer in time, or answered with an error.
    Down,
}

/// One dependency's check.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Check {
    /// `ok` or `down`.
    pub status: CheckStatus,
    /// Which backend serves it: `redis` or `memory` (shared state), `sqlite` or `postgres` (database).
    pub backend: String,
    /// Round-trip time of the probe (`PING`, `SELECT 1`), in milliseconds.
    pub latency_ms: Option<f64>,
    /// Redis server version.
    pub version: Option<String>,
    /// Redis replication role (`master`, `slave`).
    pub role: Option<String>,
    /// Redis memory in use, in bytes.
    pub used_memory: Option<u64>,
    /// Clients connected to Redis.
    pub connected_clients: Option<u64>,
    /// Redis uptime in seconds.
    pub uptime_seconds: Option<u64>,
    /// Redis eviction policy; shared state wants `noeviction`.
    pub maxmemory_policy: Option<String>,
    /// Why the check is down.
    pub error: Option<String>,
}

impl Check {
    fn down(backend: &str, error: &str) -> Self {
        Check {
            status: CheckStatus::Down,
            backend: backend.to_owned(),
            latency_ms: None,
            version: None,
            role: None,
            used_memory: None,
            connected_clients: None,
            uptime_seconds: None,
            maxmemory_policy: None,
            error: Some(error.to_owned()),
        }
    }

    fn up(backend: &str, latency: Duration) -> Self {
        Check { status: CheckStatus::Ok, latency_ms: Some(millis(latency)), error: None, ..Check::down(backend, "") }
    }
}

/// The checks of every required dependency.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Checks {
    /// Shared state (Redis, or the in-process memory backend).
    pub redis: Check,
    /// The SQL database.
    pub database: Check,
}

/// The readiness report.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Readiness {
    /// `ok` when every check passed, else `down`.
    pub status: CheckStatus,
    /// Each dependency's check.
    pub checks: Checks,
    /// The names of the failing checks (`redis`, `database`), when any fail.
    pub failing: Option<Vec<String>>,
}

/// The health service.
#[async_trait]
pub trait HealthService: Interface {
    /// Checks every dependency, concurrently, each bounded by the check timeout.
    async fn readiness(&self) -> Readiness;

    /// The Prometheus text exposition.
    fn metrics(&self) -> String;
}

/// Checks Redis and the database.
#[derive(Component)]
#[shaku(interface = HealthService)]
pub struct HealthServiceImpl {
    #[shaku(inject)]
    redis: Arc<dyn RedisHealth>,
    #[shaku(inject)]
    database: Arc<dyn SqlDatabase>,
    /// The app's metrics registry.
    metrics: Metrics,
    /// Longest a check may take.
    #[shaku(default = crate::HealthConfig::default().check_timeout)]
    check_timeout: Duration,
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl HealthServiceImpl {
    async fn check_redis(&self) -> Check {
        match tokio::time::timeout(self.check_timeout, self.redis.probe()).await {
            Ok(probe) if probe.up => {
                let mut check = Check::up(probe.backend, probe.latency.unwrap_or_default());
                if let Some(info) = probe.info {
                    check.version = Some(info.version);
                    check.role = Some(info.role);
                    check.used_memory = Some(info.used_memory);
                    check.connected_clients = Some(info.connected_clients);
                    check.uptime_seconds = Some(info.uptime_seconds);
                    check.maxmemory_policy = Some(info.maxmemory_policy);
                }
                check
            }
            Ok(probe) => Check::down(probe.backend, probe.error.as_deref().unwrap_or("down")),
            Err(_) => Check::down("redis", "timed out"),
        }
    }

    async fn check_database(&self) -> Check {
        let backend = self.database.backend().name();
        match tokio::time::timeout(self.check_timeout, self.database.ping()).await {
            Ok(Ok(latency)) => Check::up(backend, latency),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "database health check failed");
                Check::down(backend, "unreachable or not answering")
            }
            Err(_) => Check::down(backend, "timed out"),
        }
    }
}

#[async_trait]
impl HealthService for HealthServiceImpl {
    async fn readiness(&self) -> Readiness {
        let (redis, database) = tokio::join!(self.check_redis(), self.check_database());
        let failing: Vec<String> = [("redis", &redis), ("database", &database)]
            .into_iter()
            .filter(|(_, c)| c.status == CheckStatus::Down)
            .map(|(name, _)| name.to_owned())
            .collect();
        Readiness {
            status: if failing.is_empty() { CheckStatus::Ok } else { CheckStatus::Down },
            checks: Checks { redis, database },
            failing: (!failing.is_empty()).then_some(failing),
        }
    }

    fn metrics(&self) -> String {
        self.metrics.encode()
    }
}
