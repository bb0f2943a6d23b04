//! The SQL user repository on real SQLite, and on real PostgreSQL when `TEST_DATABASE_URL` is
//! set (CI sets it).

use std::sync::Arc;

use app_core::{Role, testing::TestDatabase};
use app_database::{Database, DatabaseConfig, DatabaseContainer, SqlDatabase};
use app_users::{Email, NewUser, SqlUserRepository, UserName, UserRepository, UsersError};
use shaku::HasComponent;
use uuid::Uuid;

/// The tables this module's repository needs: its own migrations and its imports'.
fn migrations() -> Vec<app_core::Migration> {
    app_core::module::ModuleSet::new(vec![Box::new(app_users::UsersModule)]).migrations().expect("unique versions")
}

async fn repository(test_db: &TestDatabase) -> (SqlUserRepository, Database) {
    let db = Database::connect(&DatabaseConfig { url: test_db.url().to_owned(), ..DatabaseConfig::default() })
        .await
        .expect("connect");
    db.migrate(&migrations()).await.expect("migrate");
    let module = DatabaseContainer::with_database(db.clone()).build();
    let sql: Arc<dyn SqlDatabase> = module.resolve();
    (SqlUserRepository::new(sql), db)
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::normalize(email),
        name: UserName::parse("Ann").expect("name"),
        role: Role::User,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

#[tokio::test]
async fn users_are_created_found_renamed_promoted_and_deleted() {
    for test_db in TestDatabase::all().await {
        let backend = test_db.backend();
        let (repo, db) = repository(&test_db).await;
        let created = repo.create(new_user("Ann@Example.com")).await.expect("create");
        assert_eq!(created.id.get_version_num(), 7, "{backend}: UUID v7");
        assert_eq!(created.email, "ann@example.com");

        assert_eq!(repo.find(created.id).await.expect("find"), Some(created.clone()), "{backend}");
        let creds = repo.find_credentials(&Email::normalize("ANN@example.COM")).await.expect("find").expect("found");
        assert_eq!(creds.user, created, "{backend}: found case-insensitively");
        assert!(creds.password_hash.starts_with("$argon2id$"));
        assert!(!format!("{creds:?}").contains("argon2"), "{backend}: the hash never prints");

        let dup = repo.create(new_user("ann@EXAMPLE.com")).await.expect_err("duplicate");
        assert!(matches!(dup, UsersError::EmailTaken), "{backend}: {dup:?}");

        let renamed = repo.update_name(created.id, &UserName::parse("Zoe").unwrap()).await.expect("rename");
        let renamed = renamed.expect("exists");
        assert_eq!(renamed.name, "Zoe");
        assert!(renamed.updated_at >= created.updated_at);
        let promoted = repo.set_role(created.id, Role::Admin).await.expect("role").expect("exists");
        assert_eq!(promoted.role, Role::Admin, "{backend}");

        let nobody = Uuid::now_v7();
        assert_eq!(repo.update_name(nobody, &UserName::parse("X").unwrap()).await.expect("rename"), None);
        assert_eq!(repo.set_role(nobody, Role::Admin).await.expect("role"), None);
        assert!(repo.find(nobody).await.expect("find").is_none());

        assert!(repo.delete(created.id).await.expect("delete"), "{backend}");
        assert!(!repo.delete(created.id).await.expect("delete"), "{backend}: already gone");
        assert!(repo.find(created.id).await.expect("find").is_none());
        assert!(repo.create(new_user("ann@example.com")).await.is_ok(), "{backend}: the email is free again");
        db.close().await;
    }
}

#[tokio::test]
async fn the_users_table_refuses_a_second_email_and_an_unknown_role_on_every_backend() {
    for test_db in TestDatabase::all().await {
        let (_, db) = repository(&test_db).await;
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
