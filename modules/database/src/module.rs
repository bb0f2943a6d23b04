//! The DatabaseModule.

use std::time::Duration;

use async_trait::async_trait;
use shaku::{Component, Interface, module};

use crate::{Backend, Database, DbError};

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
    /// Opened (and migrated) before the module is built.
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

module! {
    pub DatabaseModule {
        components = [DatabaseComponent],
        providers = []
    }
}

impl DatabaseModule {
    /// The module around an opened database.
    pub fn with_database(db: Database) -> shaku::ModuleBuilder<DatabaseModule> {
        DatabaseModule::builder().with_component_parameters::<DatabaseComponent>(DatabaseComponentParameters { db })
    }
}
