//! The HealthModule: liveness, readiness with dependency checks, and Prometheus metrics.
//!
//! - `GET /health/live`: 200 while the process serves (no dependency is consulted, so a Redis
//!   outage never gets healthy instances restarted);
//! - `GET /health/ready`: 200 when every readiness check the app's modules contribute passes
//!   (shared state, the database, ...), else 503 naming the failing ones; load balancers take the
//!   instance out of rotation meanwhile;
//! - `GET /metrics`: the Prometheus text exposition of the app's registry.
//!
//! Depends on `core` only: the checks come from the modules that own the dependencies.

mod api;
mod config;
mod module;
mod service;

pub use api::HealthApi;
pub use config::HealthConfig;
pub use module::{HealthContainer, HealthModule};
pub use service::{HealthService, HealthServiceImpl, HealthServiceImplParameters, Readiness};
