//! The DatabaseModule: the SQL source of truth.
//!
//! [`Database`] is a sqlx pool over SQLite (the embedded default, a file under `./data/`) or
//! PostgreSQL (when `DATABASE_URL` says so), with one code path for both. It owns no table:
//! [`DatabaseModule`] runs the migrations every module declares, in version order. Feature
//! modules import it, inject [`SqlDatabase`] from its container and write their repositories
//! against [`Database::pool`].
//!
//! Depends on `core` only; names no feature.

mod config;
mod database;
mod error;
mod module;

pub use config::{DEFAULT_URL, DatabaseConfig};
pub use database::{Backend, Database};
pub use error::DbError;
pub use module::{DatabaseComponent, DatabaseComponentParameters, DatabaseContainer, DatabaseModule, SqlDatabase};

#[cfg(test)]
mod tests {
    use app_core::{Migration, testing::TestDatabase};
    use sqlx::Row;

    use super::*;

    /// A table of this test's own: the database module knows none.
    const NOTES: Migration = Migration::new(
        20990101000001,
        "notes",
        "CREATE TABLE notes (id TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL)",
    );
    const TAGGED: Migration =
        Migration::new(20990101000002, "notes_tag", "ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'plain'");

    async fn open(db: &TestDatabase, migrations: &[Migration]) -> Database {
        let cfg = DatabaseConfig { url: db.url().to_owned(), ..Default::default() };
        let database = Database::connect(&cfg).await.expect("connect");
        database.migrate(migrations).await.expect("migrate");
        database
    }

    #[tokio::test]
    async fn the_migrations_modules_bring_run_in_order_on_every_backend() {
        for test_db in TestDatabase::all().await {
            let db = open(&test_db, &[NOTES, TAGGED]).await;
            assert_eq!(db.backend().name(), test_db.backend());
            sqlx::query("INSERT INTO notes (id, body, created_at) VALUES ($1, $2, $3)")
                .bind("n1")
                .bind("hello")
                .bind(1_764_000_000_000_i64)
                .execute(db.pool())
                .await
                .unwrap_or_else(|e| panic!("{}: insert: {e}", test_db.backend()));
            let row = sqlx::query("SELECT body, tag, created_at FROM notes WHERE id = $1")
                .bind("n1")
                .fetch_one(db.pool())
                .await
                .expect("select");
            assert_eq!(row.get::<String, _>("body"), "hello");
            assert_eq!(row.get::<String, _>("tag"), "plain", "the second migration ran after the first");
            assert_eq!(row.get::<i64, _>("created_at"), 1_764_000_000_000);
            db.close().await;
        }
    }

    #[tokio::test]
    async fn migrating_twice_is_a_no_op_and_a_changed_migration_is_refused() {
        for test_db in TestDatabase::all().await {
            let db = open(&test_db, &[NOTES]).await;
            db.migrate(&[NOTES]).await.expect("a second run changes nothing");
            db.migrate(&[NOTES, TAGGED]).await.expect("a new migration runs");
            let changed = Migration::new(NOTES.version, NOTES.description, "CREATE TABLE other (id TEXT)");
            let err = db.migrate(&[changed, TAGGED]).await.expect_err("an applied migration was edited");
            assert!(matches!(err, DbError::Migration(_)), "{err}");
            assert!(db.ping().await.expect("ping") < std::time::Duration::from_secs(5));
            db.close().await;
        }
    }

    #[tokio::test]
    async fn an_in_memory_database_keeps_its_schema_across_the_pool() {
        let db = Database::connect(&DatabaseConfig { url: "sqlite::memory:".into(), ..Default::default() })
            .await
            .expect("connect");
        db.migrate(&[NOTES]).await.expect("migrate");
        // Concurrent queries would each get a fresh, empty database on a multi-connection pool.
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notes").fetch_one(db.pool()).await
                })
            })
            .collect();
        for task in tasks {
            let count = task.await.expect("task").expect("the table exists on every pooled connection");
            assert_eq!(count, 0);
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_clear_error() {
        let cfg = DatabaseConfig {
            url: "postgres://nobody:secret@127.0.0.1:1/none".into(),
            acquire_timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        };
        let err = Database::connect(&cfg).await.expect_err("nothing listens on port 1");
        let text = err.to_string();
        assert!(matches!(err, DbError::Unavailable(_)), "{text}");
        assert!(!text.contains("secret"), "the password is not repeated: {text}");
    }
}
