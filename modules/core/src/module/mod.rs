//! Modules that own themselves, as NestJS's `@Module` and loco's `Hooks`: a feature is one crate
//! whose [`Module`] declares everything it adds, and the app is a list of modules.
//!
//! A module declares, in one `impl Module`:
//! - what it imports (the modules it needs, built before it: NestJS's `imports`);
//! - its configuration section ([`ConfigSection`](crate::config::ConfigSection));
//! - its migrations (the database module runs the migrations every module brings);
//! - its error codes (so the spec's `ErrorCode` enum names every code the app answers);
//! - and, when it is built ([`Module::build`], with a [`Context`]): its DI container (a shaku
//!   module, whose components are declared with [`component!`](crate::component)), its controllers with their rate-limit rules ([`Controller`]), its readiness
//!   checks, its metrics, its [`Lifecycle`] (start-up work, background tasks, ordered shutdown),
//!   and the values it provides to the modules after it (a port such as the session verifier).
//!
//! [`ModuleSet`] resolves a list of modules (imports first, each once), collects their sections,
//! migrations and codes, and builds them in order into a [`Built`] app that the composition root
//! serves.

mod component;
mod context;
mod controller;
mod router;
mod set;

use std::any::TypeId;

use async_trait::async_trait;
pub use context::{Collected, Context, Customizers};
pub use controller::{Composed, Controller, compose};
pub use router::Router;
pub use set::{Built, ModuleSet, Values};

use crate::{ErrorCode, config::Section};

/// A module: one crate's contribution to the app, declared in one place.
#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// The module's name, for logs and start-up errors (`notes`).
    fn name(&self) -> &'static str;

    /// The modules this one needs (their crates are its dependencies); each is built once,
    /// before the first module that imports it.
    fn imports(&self) -> Vec<Box<dyn Module>> {
        Vec::new()
    }

    /// The module's configuration section, if it has one.
    fn config(&self) -> Option<Section> {
        None
    }

    /// The module's migrations (its own tables).
    fn migrations(&self) -> Vec<Migration> {
        Vec::new()
    }

    /// The error codes the module's answers may carry (beyond the framework's).
    fn error_codes(&self) -> &'static [ErrorCode] {
        &[]
    }

    /// Builds the module: its container from its configuration and its imports' containers,
    /// and its contributions to the app. Async work (connecting, opening a pool) happens here,
    /// before the container is built, so a container never fails half-way.
    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError>;

    /// The module's identity (one instance of each module type per app).
    fn id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
}

/// What the app runs as: its lifecycle hooks start accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `app serve`: the HTTP server (and whatever else modules run beside it).
    Serve,
    /// `app worker`: background work only, no HTTP server.
    Worker,
}

/// A module's start-up work, background tasks and shutdown (NestJS's `OnModuleInit`,
/// `beforeApplicationShutdown` and `OnApplicationShutdown`).
#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// After every module is built, before the app serves; in build order (a module starts after
    /// the modules it imports).
    async fn start(&self, _mode: Mode) -> Result<(), ModuleError> {
        Ok(())
    }

    /// When the shutdown signal arrives, before in-flight requests drain (end what would hold
    /// the drain open, such as event streams).
    fn shutting_down(&self) {}

    /// After the server has stopped; in reverse build order, so what others use closes last.
    async fn stop(&self) {}
}

/// A module's migration: one schema change, run once per database, in version order with
/// every module's others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Unique across the app (a timestamp, `20261124000001`), and never changed once released.
    pub version: i64,
    /// What it does (`notes`).
    pub description: &'static str,
    /// The SQL, for every backend (the schema keeps to what SQLite and PostgreSQL both take).
    pub sql: &'static str,
    /// PostgreSQL's own SQL, when it must differ.
    pub postgres: Option<&'static str>,
}

impl Migration {
    /// A migration whose SQL runs on every backend.
    pub const fn new(version: i64, description: &'static str, sql: &'static str) -> Self {
        Self { version, description, sql, postgres: None }
    }

    /// With PostgreSQL's own SQL.
    pub const fn postgres(mut self, sql: &'static str) -> Self {
        self.postgres = Some(sql);
        self
    }
}

/// Why a module could not be built or started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    /// The module (filled in by the [`ModuleSet`]).
    pub module: &'static str,
    /// What went wrong, in one line (no secrets).
    pub message: String,
}

impl ModuleError {
    /// An error of the module being built.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self { module: "", message: message.to_string() }
    }
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.module.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "module `{}`: {}", self.module, self.message)
        }
    }
}

impl std::error::Error for ModuleError {}
