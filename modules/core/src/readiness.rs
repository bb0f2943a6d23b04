//! Readiness checks: what a module contributes to `/health/ready`.
//!
//! A module whose dependency must answer for the instance to take traffic (Redis, the
//! database) contributes a [`ReadinessCheck`]; the health module asks every contributed check,
//! concurrently, each bounded by its timeout.

use std::time::Duration;

use async_trait::async_trait;
use poem_openapi::{Enum, Object};

/// A dependency the instance needs to take traffic.
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    /// The check's name in the report (`redis`, `database`).
    fn name(&self) -> &'static str;

    /// Asks the dependency. The health module bounds it with its timeout.
    async fn check(&self) -> Check;
}

/// Whether a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The dependency answered.
    Ok,
    /// The dependency did not answer in time, or answered with an error.
    Down,
}

/// One dependency's check: its status, and details for operators.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Check {
    /// `ok` or `down`.
    pub status: CheckStatus,
    /// Which backend serves it (`redis` or `memory`, `sqlite` or `postgres`).
    pub backend: Option<String>,
    /// Round-trip time of the probe (`PING`, `SELECT 1`), in milliseconds.
    pub latency_ms: Option<f64>,
    /// The server's version.
    pub version: Option<String>,
    /// The server's replication role (`master`, `slave`).
    pub role: Option<String>,
    /// Memory the server uses, in bytes.
    pub used_memory: Option<u64>,
    /// Clients connected to the server.
    pub connected_clients: Option<u64>,
    /// The server's uptime in seconds.
    pub uptime_seconds: Option<u64>,
    /// The server's eviction policy (shared state wants `noeviction`).
    pub maxmemory_policy: Option<String>,
    /// Why the check is down.
    pub error: Option<String>,
}

impl Check {
    /// A passed check of `backend`, answered in `latency`.
    pub fn up(backend: &str, latency: Duration) -> Self {
        Check {
            status: CheckStatus::Ok,
            latency_ms: Some((latency.as_secs_f64() * 1e6).round() / 1e3),
            error: None,
            ..Check::down(backend, "")
        }
    }

    /// A failed check of `backend`, with why (in words an operator may see: no addresses).
    pub fn down(backend: &str, error: &str) -> Self {
        Check {
            status: CheckStatus::Down,
            backend: Some(backend.to_owned()),
            latency_ms: None,
            version: None,
            role: None,
            used_memory: None,
            connected_clients: None,
            uptime_seconds: None,
            maxmemory_policy: None,
            error: (!error.is_empty()).then(|| error.to_owned()),
        }
    }
}
