//! The database module: opens the pool, runs every module's migrations, and gives repositories
//! the pool through its container.

use std::{sync::Arc, time::Duration};

use app_core::{
    Context, Lifecycle, Module, ModuleError,
    config::Section,
    readiness::{Check, ReadinessCheck},
};
use async_trait::async_trait;
use shaku::{Component, Interface, module};

use crate::{Backend, Database, DatabaseConfig, DbError};

/// The database as the rest of the app sees it: repositories take the pool, health pings it.
#[async_trait]
pub trait SqlDatabase: Interface {
    /// The connected database.
    fn database(&self) -> &Database;

    /// `SELECT 1` round trip.
    async fn ping(&self) -> Result<Duration, DbError>;

    /// Which database this is.
    fn backend(&self) -> Backend {
        self.database().backend()
    }
}

/// The component holding the pool opened at start-up.
#[derive(Component)]
#[shaku(interface = SqlDatabase)]
pub struct DatabaseComponent {
    /// Opened (and migrated) before the container is built.
    db: Database,
}

#[async_trait]
impl SqlDatabase for DatabaseComponent {
    fn database(&self) -> &Database {
        &self.db
    }

    async fn ping(&self) -> Result<Duration, DbError> {
        self.db.ping().await
    }
}

// The database module's container: feature containers import its `dyn SqlDatabase`.
module! {
    pub DatabaseContainer {
        components = [DatabaseComponent],
        providers = []
    }
}

impl DatabaseContainer {
    /// The container around an opened database (tests build repositories on it).
    pub fn with_database(db: Database) -> shaku::ModuleBuilder<DatabaseContainer> {
        DatabaseContainer::builder().with_component_parameters::<DatabaseComponent>(DatabaseComponentParameters { db })
    }
}

/// The SQL source of truth: SQLite (the embedded default) or PostgreSQL. It owns no table: it
/// runs the migrations the modules bring (when `database.migrate_on_start`, the default).
/// Readiness check: `database`; the pool closes last.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatabaseModule;

#[async_trait]
impl Module for DatabaseModule {
    fn name(&self) -> &'static str {
        "database"
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<DatabaseConfig>())
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let config = ctx.config::<DatabaseConfig>().clone();
        let database = Database::connect(&config).await.map_err(ModuleError::new)?;
        if config.migrate_on_start {
            database.migrate(ctx.migrations()).await.map_err(ModuleError::new)?;
        }
        tracing::info!(backend = database.backend().name(), "database ready");
        let container = ctx.container(DatabaseContainer::with_database(database.clone()));
        ctx.readiness(DatabaseCheck(shaku::HasComponent::resolve(&*container)));
        ctx.lifecycle(Close(database));
        Ok(())
    }
}

/// `SELECT 1` on the pool (through the container, so a test's override is what it asks).
struct DatabaseCheck(Arc<dyn SqlDatabase>);

#[async_trait]
impl ReadinessCheck for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Check {
        let backend = self.0.backend().name();
        match self.0.ping().await {
            Ok(latency) => Check::up(backend, latency),
            Err(err) => {
                tracing::warn!(error = %err, "database health check failed");
                Check::down(backend, "unreachable or not answering")
            }
        }
    }
}

/// Closes the pool once everything that uses it has stopped.
struct Close(Database);

#[async_trait]
impl Lifecycle for Close {
    async fn stop(&self) {
        self.0.close().await;
    }
}
