//! The SQL adapter: one code path for SQLite and PostgreSQL through sqlx's Any driver
//! (ids as TEXT, timestamps as epoch milliseconds).

use std::sync::Arc;

use app_core::Role;
use app_database::{DbError, SqlDatabase};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::UserRepository;
use crate::{Credentials, Email, NewUser, User, UserName, UsersError};

const COLUMNS: &str = "id, email, name, role, password_hash, created_at, updated_at";

/// Users in the SQL database.
pub struct SqlUserRepository {
    db: Arc<dyn SqlDatabase>,
}

impl SqlUserRepository {
    /// A repository over `db` (outside the container, e.g. the CLI and tests).
    pub fn new(db: Arc<dyn SqlDatabase>) -> Self {
        Self { db }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    email: String,
    name: String,
    role: String,
    password_hash: String,
    created_at: i64,
    updated_at: i64,
}

impl Row {
    fn into_credentials(self) -> Result<Credentials, UsersError> {
        let corrupt = |what: &str| UsersError::Db(DbError::Query(format!("users row {}: bad {what}", self.id)));
        let user = User {
            id: Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))?,
            email: self.email.clone(),
            name: self.name.clone(),
            role: Role::parse(&self.role).ok_or_else(|| corrupt("role"))?,
            created_at: millis(self.created_at).ok_or_else(|| corrupt("created_at"))?,
            updated_at: millis(self.updated_at).ok_or_else(|| corrupt("updated_at"))?,
        };
        Ok(Credentials { user, password_hash: self.password_hash })
    }
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn now() -> DateTime<Utc> {
    // Millisecond precision, as stored, so what `create` returns equals what `find` reads.
    millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

impl SqlUserRepository {
    async fn fetch(&self, id: Uuid) -> Result<Option<User>, UsersError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE id = $1"));
        let row: Option<Row> =
            sqlx::query_as(sql).bind(id.to_string()).fetch_optional(self.db.database().pool()).await?;
        row.map(|r| r.into_credentials().map(|c| c.user)).transpose()
    }
}

#[async_trait]
impl UserRepository for SqlUserRepository {
    async fn create(&self, new: NewUser) -> Result<User, UsersError> {
        let now = now();
        let user = User {
            id: Uuid::now_v7(),
            email: new.email.as_str().to_owned(),
            name: new.name.as_str().to_owned(),
            role: new.role,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(&new.password_hash)
        .bind(now.timestamp_millis())
        .bind(now.timestamp_millis())
        .execute(self.db.database().pool())
        .await?;
        Ok(user)
    }

    async fn find(&self, id: Uuid) -> Result<Option<User>, UsersError> {
        self.fetch(id).await
    }

    async fn find_credentials(&self, email: &Email) -> Result<Option<Credentials>, UsersError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE email = $1"));
        let row: Option<Row> =
            sqlx::query_as(sql).bind(email.as_str()).fetch_optional(self.db.database().pool()).await?;
        row.map(Row::into_credentials).transpose()
    }

    async fn update_name(&self, id: Uuid, name: &UserName) -> Result<Option<User>, UsersError> {
        let done = sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name.as_str())
            .bind(now().timestamp_millis())
            .bind(id.to_string())
            .execute(self.db.database().pool())
            .await?;
        if done.rows_affected() == 0 { Ok(None) } else { self.fetch(id).await }
    }

    async fn set_role(&self, id: Uuid, role: Role) -> Result<Option<User>, UsersError> {
        let done = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(now().timestamp_millis())
            .bind(id.to_string())
            .execute(self.db.database().pool())
            .await?;
        if done.rows_affected() == 0 { Ok(None) } else { self.fetch(id).await }
    }

    async fn delete(&self, id: Uuid) -> Result<bool, UsersError> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(self.db.database().pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
