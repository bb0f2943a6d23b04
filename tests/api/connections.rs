//! Connection limits over raw TCP against the real server: a client trickling its headers and a
//! silent client are closed within the header-read timeout, a client that stops reading within
//! the idle timeout, the connection cap holds new connections back until one closes, and an
//! event stream outlives both timeouts.

use std::time::{Duration, Instant};

use app_core::config::ServerConfig;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{TestApp, app, jobs::Flaky};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect")
}

/// Reads until the server closes the connection (EOF or reset), up to `limit`; how long it took,
/// or `None` if it was still open then. Whatever the server sent meanwhile is discarded.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

async fn with_timeouts(header: Duration, idle: Duration, max_connections: usize) -> TestApp {
    app()
        .with_test_jobs(Flaky::default())
        .config(move |c| {
            let server = c.get_mut::<ServerConfig>();
            (server.header_read_timeout, server.idle_timeout, server.max_connections) = (header, idle, max_connections);
            c.get_mut::<app_jobs::JobsConfig>().stream_heartbeat = Duration::from_millis(200);
        })
        .spawn()
        .await
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_closed_within_the_header_read_timeout() {
    let app = with_timeouts(Duration::from_secs(1), Duration::from_secs(30), 100).await;
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    // One header line every 300 ms keeps bytes moving, but the headers never end.
    let trickle = async {
        for n in 0.. {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow.write_all(format!("X-Slow-{n}: 1\r\n").as_bytes()).await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), trickle).await;
    assert!(
        closed_within(&mut slow, Duration::from_secs(1)).await.is_some(),
        "the server closed the trickling connection (before the 20 s the test allows)"
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_within_the_header_read_timeout_and_a_normal_one_is_served() {
    let app = with_timeouts(Duration::from_secs(1), Duration::from_secs(30), 100).await;
    let mut silent = connect(&app).await;
    let closed = closed_within(&mut silent, Duration::from_secs(15)).await;
    assert!(closed.is_some_and(|t| t >= Duration::from_millis(900)), "closed after about 1 s: {closed:?}");
    // A keep-alive connection that idles after its response is closed the same way.
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut response = [0u8; 1024];
    let n = idle.read(&mut response).await.expect("read");
    assert!(response[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response[..n]));
    // hyper's deadline for the next head passes 1 s after the response; the watchdog's looks
    // (every eighth of the header-read timeout here) make hyper see it, long before the next look
    // the idle timeout alone would ask for (3.75 s).
    let closed = closed_within(&mut idle, Duration::from_secs(15)).await;
    assert!(closed.is_some_and(|t| t < Duration::from_secs(3)), "idle keep-alive closed after about 1 s: {closed:?}");
    assert_eq!(app.live().await.status(), 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_idle_timeout() {
    let app = with_timeouts(Duration::from_secs(30), Duration::from_secs(1), 100).await;
    let (_, tokens) = app.user().await;
    // A request body announced but never sent: nothing moves on the connection.
    let mut stalled = connect(&app).await;
    let request = format!(
        "POST /api/v1/library HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{",
        tokens.access
    );
    stalled.write_all(request.as_bytes()).await.expect("write");
    let closed = closed_within(&mut stalled, Duration::from_secs(15)).await;
    assert!(closed.is_some(), "a connection quiet for the idle timeout is dropped");
}

#[tokio::test]
async fn at_the_connection_cap_a_new_connection_waits_until_one_closes() {
    let app = with_timeouts(Duration::from_secs(30), Duration::from_secs(30), 2).await;
    let first = connect(&app).await;
    let second = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect(&app).await; // the kernel's backlog takes it; the server does not
    third.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut response = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut response)).await;
    assert!(early.is_err(), "not served while two connections are open");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(15), third.read(&mut response))
        .await
        .expect("served once a connection closed")
        .expect("read");
    assert!(response[..n].starts_with(b"HTTP/1.1 200"));
    drop(second);
    assert!(app.metrics().await.contains("http_connections_open"));
}

#[tokio::test]
async fn an_event_stream_outlives_both_timeouts() {
    let app = with_timeouts(Duration::from_millis(500), Duration::from_millis(800), 100).await;
    let (_, tokens) = app.user().await;
    let job = app.job(&tokens.access, "test.steps", json!({"steps": 12, "ms": 250})).await;
    let id = job["id"].as_str().expect("id");
    let started = Instant::now();
    let resp = app.open_events(id, Some(&tokens.access), None, None).await;
    assert_eq!(resp.status(), 200);
    let events = crate::support::jobs::read_events(resp).await;
    assert!(started.elapsed() > Duration::from_millis(1500), "the stream ran past both timeouts");
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("completed"), "and ended with the job: {events:?}");
}
