//! Dependency injection: tests build the same modules with components overridden.

use std::{sync::Arc, time::Duration};

use app_database::{Database, DatabaseContainer, DbError, SqlDatabase};
use async_trait::async_trait;
use serde_json::Value;
use shaku::HasComponent;

use crate::support::app;

/// The real database, whose ping reports an outage: stands in for a database that went away.
struct UnreachableDatabase(Database);

#[async_trait]
impl SqlDatabase for UnreachableDatabase {
    fn database(&self) -> &Database {
        &self.0
    }

    async fn ping(&self) -> Result<Duration, DbError> {
        Err(DbError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_component_overridden_in_the_database_container_reaches_the_readiness_check() {
    // A real pool on a fresh in-memory database, wrapped so its ping fails.
    let db = Database::connect(&app_database::DatabaseConfig { url: "sqlite::memory:".into(), ..Default::default() })
        .await
        .expect("in-memory SQLite");
    let app = app()
        .customize::<DatabaseContainer>(move |builder| {
            builder.with_component_override::<dyn SqlDatabase>(Box::new(UnreachableDatabase(db)))
        })
        .spawn()
        .await;
    let resp = app.ready().await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["failing"], serde_json::json!(["database"]), "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "ok");

    let db: Arc<dyn SqlDatabase> = HasComponent::<dyn SqlDatabase>::resolve(&*app.container::<DatabaseContainer>());
    assert!(db.ping().await.is_err(), "the database container resolves the override too");
}
