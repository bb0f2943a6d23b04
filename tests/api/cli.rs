//! The binary: configuration errors, `migrate`, `openapi`, start-up failures.

use std::process::{Command, Output};

const SECRET_A: &str = "1234567890123456789012345678901234567890";
const SECRET_B: &str = "0987654321098765432109876543210987654321";

fn run(args: &[&str], env: &[(&str, &str)]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_app"));
    cmd.current_dir(dir.path()).args(args).env("APP_LOG__LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.output().expect("run the binary"), dir)
}

/// The production profile with strong secrets, then `extra` (which may override them).
fn production<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("APP_PROFILE", "production"), ("JWT_SECRET", SECRET_A), ("SESSION_ENCRYPTION_KEY", SECRET_B)];
    env.extend_from_slice(extra);
    env
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_naming_key_and_source() {
    let (out, _dir) = run(&[], &[("PORT", "eighty")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("`server.port`") && err.contains("environment variable PORT"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}

#[test]
fn production_refuses_weak_secrets_and_the_memory_backend() {
    let (out, _dir) =
        run(&["migrate"], &production(&[("REDIS_URL", "redis://127.0.0.1:6379"), ("JWT_SECRET", "short")]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`auth.jwt_secret`"), "{}", stderr(&out));

    let (out, _dir) = run(&["migrate"], &production(&[]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`redis.url`"), "{}", stderr(&out));
}

#[test]
fn numeric_secrets_in_production_work_and_migrate_creates_the_schema() {
    let redis = app_core::testing::RedisServer::shared();
    let (out, dir) =
        run(&["migrate"], &production(&[("REDIS_URL", &redis.url()), ("DATABASE_URL", "sqlite://prod.db?mode=rwc")]));
    assert!(out.status.success(), "{}", stderr(&out));
    let db = std::fs::read(dir.path().join("prod.db")).expect("the database file exists");
    assert!(db.windows(b"CREATE TABLE users".len()).any(|w| w == b"CREATE TABLE users"), "the users table was created");
}

#[test]
fn an_unreachable_database_is_a_one_line_start_up_error() {
    let (out, _dir) = run(
        &[],
        &[("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/app"), ("APP_DATABASE__ACQUIRE_TIMEOUT", "2s")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.trim_end().lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("error: cannot start: module `database`: database unavailable"), "{err}");
    assert!(!err.contains("hunter2"), "the password is never printed: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn openapi_prints_the_committed_spec() {
    let (out, _dir) = run(&["openapi"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).expect("utf8");
    let committed = include_str!("../../openapi/openapi.json");
    assert!(
        printed.trim_end() == committed.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -- openapi -o openapi/openapi.json`"
    );
}

#[test]
fn production_logs_are_json_lines() {
    let redis = app_core::testing::RedisServer::shared();
    let (out, _dir) = run(&["migrate"], &production(&[("APP_LOG__LEVEL", "info"), ("REDIS_URL", &redis.url())]));
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "something was logged");
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(entry["timestamp"].is_string() && entry["level"].is_string(), "{line}");
    }
    assert!(stdout.contains("migrations applied"), "{stdout}");
}

fn run_with_stdin(args: &[&str], env: &[(&str, &str)], stdin: &str, dir: &std::path::Path) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_app"));
    cmd.current_dir(dir).args(args).env("APP_LOG__LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the binary");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write the password");
    child.wait_with_output().expect("the binary finishes")
}

#[tokio::test]
async fn the_first_admin_is_created_from_the_command_line_and_role_changes_end_sessions() {
    let redis = app_core::testing::RedisServer::shared();
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = format!("sqlite://{}/app.db?mode=rwc", dir.path().display());
    let prefix = app_core::testing::unique_prefix();
    let env = [("DATABASE_URL", db_url.as_str()), ("REDIS_URL", &redis.url()), ("APP_REDIS__KEY_PREFIX", &prefix)];
    let create = ["user", "create", "--email", "Root@Example.com", "--name", "Root", "--admin"];

    let out = run_with_stdin(&create, &env, "short\n", dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("8 to 128 characters"), "{}", stderr(&out));

    let out = run_with_stdin(&create, &env, "a long admin password\n", dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("created root@example.com") && stdout.contains("role admin"), "{stdout}");
    let again = run_with_stdin(&create, &env, "a long admin password\n", dir.path());
    assert_eq!(again.status.code(), Some(1), "the email is taken");

    let (url, key_prefix) = (db_url.clone(), prefix.clone());
    let app = crate::support::app()
        .config(move |c| {
            c.get_mut::<app_database::DatabaseConfig>().url = url;
            c.get_mut::<app_redis::RedisConfig>().key_prefix = key_prefix;
        })
        .spawn()
        .await;
    let resp = app.login("root@example.com", "a long admin password").await;
    assert_eq!(resp.status(), 200);
    let token = resp.json::<serde_json::Value>().await.expect("json")["accessToken"].as_str().unwrap().to_owned();
    let me: serde_json::Value = app.me(&token).await.json().await.expect("json");
    assert_eq!(me["role"], "admin");

    let out =
        run_with_stdin(&["user", "set-role", "--email", "root@example.com", "--role", "user"], &env, "", dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    crate::support::assert_problem(app.me(&token).await, 401, "SESSION_REVOKED").await;

    let out = run_with_stdin(&["user", "delete", "--email", "root@example.com"], &env, "", dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_with_stdin(&["user", "delete", "--email", "root@example.com"], &env, "", dir.path());
    assert!(stderr(&out).contains("no user with the email"), "{}", stderr(&out));
}

#[test]
fn the_worker_command_needs_redis_and_says_so() {
    let (out, _dir) = run(&["worker"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("`app worker` needs Redis (REDIS_URL)"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
