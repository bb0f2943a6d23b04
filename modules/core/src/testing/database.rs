//! A fresh database per test: a SQLite file in a temp dir, or a PostgreSQL database of its own
//! on the server `TEST_DATABASE_URL` points at (CI sets it; PostgreSQL runs there with trust auth).

use sqlx::{Connection, Executor, PgConnection};

/// A database that exists for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

enum Kind {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new SQLite database file.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("create a temp dir for SQLite");
        let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
        TestDatabase { url, kind: Kind::Sqlite(dir) }
    }

    /// A new PostgreSQL database when `TEST_DATABASE_URL` is set, else `None`.
    pub async fn postgres() -> Option<TestDatabase> {
        let admin_url = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .expect("create a test database");
        let _ = conn.close().await;
        let url = replace_db_name(&admin_url, &name);
        Some(TestDatabase { url, kind: Kind::Postgres { admin_url, name } })
    }

    /// SQLite, plus PostgreSQL when `TEST_DATABASE_URL` is set: repository tests run on each.
    pub async fn all() -> Vec<TestDatabase> {
        let mut out = vec![Self::sqlite()];
        out.extend(Self::postgres().await);
        out
    }

    /// The connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `sqlite` or `postgres`, for test messages.
    pub fn backend(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite(_) => "sqlite",
            Kind::Postgres { .. } => "postgres",
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside any runtime guarantee, so use a small runtime on a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                        let _ = conn
                            .execute(sqlx::AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)))
                            .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Swaps the database name (the URL path) of a PostgreSQL URL.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::replace_db_name;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(replace_db_name("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            replace_db_name("postgres://u@h:5432/test?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(replace_db_name("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
