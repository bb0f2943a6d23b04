//! Graceful shutdown: stop accepting, let in-flight requests finish, then close Redis and the pool.

use std::{
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use app_core::testing::{RedisServer, eventually};

use crate::support::{Backend, app};

#[tokio::test]
async fn an_in_flight_request_completes_while_new_connections_are_refused() {
    // A frozen Redis makes /health/ready a genuinely slow request (it waits for the timeouts).
    let redis = RedisServer::start();
    let mut app = app()
        .backend(Backend::Redis(redis.url()))
        .config(|c| {
            c.get_mut::<app_redis::RedisConfig>().command_timeout = Duration::from_millis(1500);
            c.get_mut::<app_health::HealthConfig>().check_timeout = Duration::from_secs(2);
        })
        .spawn()
        .await;
    assert!(eventually(Duration::from_secs(10), || async { app.ready().await.status() == 200 }).await);
    redis.freeze();

    let request = app.request(reqwest::Method::GET, "/health/ready").send();
    let in_flight = tokio::spawn(async move { (request.await, Instant::now()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    app.signal_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let refused = TcpStream::connect_timeout(&app.addr, Duration::from_millis(500)).is_err();
    let (resp, answered) = in_flight.await.expect("task");
    let resp = resp.expect("the in-flight request gets its answer");
    redis.thaw();
    assert!(refused, "a new connection is refused once shutdown has begun");
    assert!(answered > signalled, "the answer came after the shutdown signal");
    assert_eq!(resp.status(), 503, "it ran to completion (Redis was frozen)");
    assert!(signalled.elapsed() < Duration::from_secs(5));
    app.shutdown().await.expect("the server stops cleanly");

    // Redis is closed last: once the server has stopped, only this test's own connection is left.
    let clients = || redis.command(&["CLIENT", "LIST"]).lines().filter(|l| l.contains("addr=")).count();
    assert!(eventually(Duration::from_secs(5), || async { clients() == 1 }).await, "{} clients left", clients());
}

#[tokio::test]
async fn the_binary_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let child = Command::new(env!("CARGO_BIN_EXE_app"))
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .env("APP_LOG__LEVEL", "info")
        .env("APP_LOG__FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let pid = child.id().to_string();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/live");
    let up =
        eventually(Duration::from_secs(30), || async { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) });
    assert!(up.await, "the binary serves on the default host");

    let killed = Command::new("kill").arg("-TERM").arg(&pid).status().expect("kill");
    assert!(killed.success());
    let out =
        tokio::time::timeout(Duration::from_secs(15), tokio::task::spawn_blocking(move || child.wait_with_output()))
            .await
            .expect("the binary stops within 15 s of SIGTERM")
            .expect("wait task")
            .expect("output");
    assert!(out.status.success(), "exit status {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/app.db").exists(), "the embedded database was created under ./data/");

    let logs = String::from_utf8_lossy(&out.stdout);
    let memory_warnings = logs.matches("shared state is in memory").count();
    assert_eq!(memory_warnings, 1, "the in-memory backend is announced once: {logs}");
    assert!(logs.contains("development defaults"), "missing secrets are announced: {logs}");
    assert!(logs.contains("SIGTERM received"), "{logs}");
}
