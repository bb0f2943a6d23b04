//! The composition root: configuration, the AppModule, the HTTP surface, and the
//! [`Application`] that `main` and the tests build the same way.
//!
//! Architecture invariant: nothing under `modules/` depends on this crate; this crate is the
//! only place that knows every module.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod config;
pub mod module;
pub mod routes;
pub mod telemetry;

pub use app::{Application, StartError, shutdown_signal};
pub use config::AppConfig;
