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
            c.redis.command_timeout = Duration::from_millis(1500);
            c.health.check_timeout = Duration::from_secs(2);
        })
        .spawn()
        .await;
    assert!(eventually(Duration::from_secs(10), || async { app.ready().await.status() == 200 }).await);
    redis.freeze();

    let in_flight = tokio::spawn(app.request(reqwest::Method::GET, "/health/ready").send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    app.signal_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let refused = TcpStream::connect_timeout(&app.addr, Duration::from_millis(500)).is_err();
    let resp = in_flight.await.expect("task").expect("the in-flight request gets its answer");
    redis.thaw();
    assert!(refused, "a new connection is refused once shutdown has begun");
    assert_eq!(resp.status(), 503, "it ran to completion (Redis was frozen)");
    assert!(started.elapsed() < Duration::from_secs(5));
    app.shutdown().await.expect("the server stops cleanly");
}

#[tokio::test]
async fn the_binary_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_app"))
        .current_dir(dir.path())
        .env("PORT", "0")
        .env("APP_SERVER__HOST", "127.0.0.1")
        .env("APP_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    // Give it time to bind and install its signal handlers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(child.try_wait().expect("status").is_none(), "still running");
    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("status") {
            break status;
        }
        assert!(Instant::now() < deadline, "the binary did not stop within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(dir.path().join("data/app.db").exists(), "the embedded database was created under ./data/");
}
