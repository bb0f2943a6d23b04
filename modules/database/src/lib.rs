//! The DatabaseModule: the SQL source of truth.
//!
//! [`Database`] is a sqlx pool over SQLite (the embedded default, a file under `./data/`) or
//! PostgreSQL (when `DATABASE_URL` says so), with one code path for both and a migration
//! directory per backend (`migrations/sqlite`, `migrations/postgres`). Feature modules inject
//! [`SqlDatabase`] and write their repositories against [`Database::pool`].
//!
//! Depends on `core` only.

mod config;
mod database;
mod error;
mod module;

pub use config::{DEFAULT_URL, DatabaseConfig};
pub use database::{Backend, Database};
pub use error::DbError;
pub use module::{DatabaseComponent, DatabaseComponentParameters, DatabaseModule, SqlDatabase};

#[cfg(test)]
mod tests {
    use app_core::testing::TestDatabase;
    use sqlx::Row;

    use super::*;

    async fn open(db: &TestDatabase) -> Database {
        let cfg = DatabaseConfig { url: db.url().to_owned(), ..Default::default() };
        let database = Database::connect(&cfg).await.expect("connect");
        database.migrate().await.expect("migrate");
        database
    }

    #[tokio::test]
    async fn migrations_create_the_users_table_on_every_backend() {
        for test_db in TestDatabase::all().await {
            let db = open(&test_db).await;
            assert_eq!(db.backend().name(), test_db.backend());
            sqlx::query(
                "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind("0193f2c4-0000-7000-8000-000000000001")
            .bind("ada@example.com")
            .bind("Ada")
            .bind("user")
            .bind("$argon2id$...")
            .bind(1_764_000_000_000_i64)
            .bind(1_764_000_000_000_i64)
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{}: insert: {e}", test_db.backend()));
            let row = sqlx::query("SELECT name, created_at FROM users WHERE email = $1")
                .bind("ada@example.com")
                .fetch_one(db.pool())
                .await
                .expect("select");
            assert_eq!(row.get::<String, _>("name"), "Ada");
            assert_eq!(row.get::<i64, _>("created_at"), 1_764_000_000_000);
            db.close().await;
        }
    }

    #[tokio::test]
    async fn emails_are_unique_and_roles_are_checked() {
        for test_db in TestDatabase::all().await {
            let db = open(&test_db).await;
            let insert = |id: &'static str, role: &'static str| {
                sqlx::query(
                    "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) \
                     VALUES ($1, 'same@example.com', 'X', $2, 'h', 0, 0)",
                )
                .bind(id)
                .bind(role)
                .execute(db.pool())
            };
            insert("a", "user").await.expect("first");
            assert!(insert("b", "user").await.is_err(), "{}: duplicate email refused", test_db.backend());
            assert!(insert("c", "root").await.is_err(), "{}: unknown role refused", test_db.backend());
            db.close().await;
        }
    }

    #[tokio::test]
    async fn migrating_twice_is_a_no_op_and_ping_answers() {
        for test_db in TestDatabase::all().await {
            let db = open(&test_db).await;
            db.migrate().await.expect("second run changes nothing");
            assert!(db.ping().await.expect("ping") < std::time::Duration::from_secs(5));
            db.close().await;
        }
    }

    #[tokio::test]
    async fn an_in_memory_database_keeps_its_schema_across_the_pool() {
        let db = Database::connect(&DatabaseConfig { url: "sqlite::memory:".into(), ..Default::default() })
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        // Concurrent queries would each get a fresh, empty database on a multi-connection pool.
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users").fetch_one(db.pool()).await
                })
            })
            .collect();
        for task in tasks {
            let count = task.await.expect("task").expect("the users table exists on every pooled connection");
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
