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
    assert!(last.starts_with("error: cannot start: database unavailable"), "{err}");
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
