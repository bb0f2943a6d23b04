//! Errors the framework produces below the handlers, on the real app.

use crate::support::{assert_problem, spawn_app};

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let body = assert_problem(app.get("/api/v1/nothing-here").await, 404, "NOT_FOUND").await;
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["type"], "about:blank");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let resp = app.request(reqwest::Method::DELETE, "/health/ready").send().await.expect("send");
    assert_problem(resp, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem_also_when_chunked() {
    let app = crate::support::app()
        .config(|c| c.get_mut::<app_core::config::ServerConfig>().max_body_bytes = 1024)
        .spawn()
        .await;
    let resp = app.request(reqwest::Method::POST, "/health/live").body(vec![b'x'; 4096]).send().await.expect("send");
    assert_problem(resp, 413, "PAYLOAD_TOO_LARGE").await;

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b'x'; 512])).collect();
    let resp = app
        .request(reqwest::Method::POST, "/health/live")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("send");
    assert_problem(resp, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_one_is_echoed() {
    let app = spawn_app().await;
    let resp = app
        .request(reqwest::Method::GET, "/health/live")
        .header("x-request-id", "spa-7f3a")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers()["x-request-id"], "spa-7f3a");
    for insane in ["has space", "semi;colon", &"x".repeat(129)] {
        let resp = app.request(reqwest::Method::GET, "/health/live").header("x-request-id", insane).send().await;
        let resp = resp.expect("a sendable header value");
        let id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
        assert_ne!(id, insane, "an insane id is replaced");
        assert_eq!(id.len(), 36, "by a generated UUID");
    }
    let a = app.live().await.headers()["x-request-id"].clone();
    let b = app.live().await.headers()["x-request-id"].clone();
    assert_ne!(a, b, "generated ids are unique");
}
