//! The HealthModule: liveness, readiness with dependency checks, and Prometheus metrics.
//!
//! - `GET /health/live`: 200 while the process serves (no dependency is consulted, so a Redis
//!   outage never gets healthy instances restarted);
//! - `GET /health/ready`: 200 when shared state and the database answer, else 503 naming the
//!   failing check; load balancers take the instance out of rotation meanwhile;
//! - `GET /metrics`: the Prometheus text exposition of the app's registry.
//!
//! Depends on `core`, `redis` (the [`RedisHealth`](app_redis::RedisHealth) probe) and
//! `database` (the [`SqlDatabase`](app_database::SqlDatabase) ping).

mod api;
mod config;
mod module;
mod service;

pub use api::HealthApi;
pub use config::HealthConfig;
pub use module::HealthModule;
pub use service::{Check, CheckStatus, HealthService, HealthServiceImpl, HealthServiceImplParameters, Readiness};
