//! Log correlation: every line logged while serving a request carries its request id.
//!
//! A test binary of its own: tracing caches per-callsite interest globally, so a test that
//! installs a thread-local subscriber must not share its process with tests that run without one.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use app_core::{
    config::ServerConfig,
    http::stack,
    metrics::{HttpMetrics, Metrics},
};
use poem::{
    Route, Server,
    listener::{Acceptor, Listener, TcpListener},
};
use poem_openapi::{OpenApi, OpenApiService, payload::PlainText};
use serde_json::Value;

struct TestApi;

#[OpenApi]
impl TestApi {
    #[oai(path = "/work", method = "post")]
    async fn work(&self) -> PlainText<&'static str> {
        tracing::info!("handler ran");
        PlainText("done")
    }
}

/// Collects log output so a test can read it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().json().with_current_span(true).with_writer(move || writer.clone()).finish();
    // A current-thread runtime: the server's tasks run on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let service = OpenApiService::new(TestApi, "test", "1");
    let endpoint = stack(
        Route::new().nest("/", service),
        &ServerConfig::default(),
        HttpMetrics::new(&Metrics::new()),
        &Default::default(),
        Default::default(),
    );
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind");
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().expect("tcp addr");
    tokio::spawn(Server::new_with_acceptor(acceptor).run(endpoint));
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/work"))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of_request: Vec<&Value> = lines.iter().filter(|l| l["span"]["request_id"] == "trace-me-1").collect();
    let messages: Vec<&str> = of_request.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"handler ran"), "the handler's own line carries the id: {text}");
    assert!(messages.contains(&"request completed"), "so does the access line: {text}");
}
