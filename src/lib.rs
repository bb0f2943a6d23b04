//! The composition root: the list of modules, the CLI, and the [`Application`] that `main` and
//! the tests build the same way.
//!
//! Architecture invariant: nothing under `modules/` depends on this crate; this crate is the
//! only place that lists every module (`modules.rs`), and it names no feature anywhere else but
//! in the account commands of the CLI.

pub mod accounts;
pub mod alloc;
pub mod app;
pub mod cli;
pub mod config;
mod docs;
mod modules;
pub mod routes;
pub mod telemetry;

pub use app::{AppBuilder, Application, StartError, shutdown_signal};
pub use modules::modules;
