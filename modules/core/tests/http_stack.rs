//! The middleware stack over real TCP, with a small test API: every error that poem,
//! poem-openapi or a handler can produce comes back as problem+json with the request id.

use std::time::Duration;

use app_core::{
    ApiError, Problems,
    config::ServerConfig,
    http::stack,
    metrics::{HttpMetrics, Metrics},
    openapi::{AppFacts, finalize},
    pagination::Pagination,
    problem::markers::{BadRequest, NotFound},
};
use poem::{
    Route, Server,
    listener::{Acceptor, Listener, TcpListener},
};
use poem_openapi::{
    Object, OpenApi, OpenApiService, SecurityScheme,
    auth::Bearer,
    param::{Path, Query},
    payload::Json,
};
use serde_json::Value;

#[derive(Debug, Object)]
struct Echo {
    name: String,
    count: u32,
}

#[derive(Debug, Object)]
struct PageInfo {
    page: u64,
    page_size: u64,
}

/// A bearer scheme whose checker accepts only `good`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check")]
struct TestBearer(());

async fn check(_: &poem::Request, bearer: Bearer) -> Option<()> {
    (bearer.token == "good").then_some(())
}

struct TestApi;

#[OpenApi]
impl TestApi {
    #[oai(path = "/echo", method = "post")]
    async fn echo(&self, body: Json<Echo>) -> Json<Echo> {
        tracing::info!("echo handler ran");
        body
    }

    #[oai(path = "/items", method = "get")]
    async fn list(
        &self,
        page: Query<Option<u64>>,
        #[oai(name = "pageSize")] page_size: Query<Option<u64>>,
    ) -> Result<Json<PageInfo>, Problems<(BadRequest,)>> {
        let p = Pagination::new(page.0, page_size.0)?;
        Ok(Json(PageInfo { page: p.page, page_size: p.page_size }))
    }

    #[oai(path = "/items/:id", method = "get")]
    async fn item(&self, id: Path<u64>) -> Result<Json<PageInfo>, Problems<(NotFound,)>> {
        if id.0 == 1 {
            Ok(Json(PageInfo { page: 1, page_size: 1 }))
        } else {
            Err(ApiError::not_found(format!("no item {}", id.0)).into())
        }
    }

    #[oai(path = "/secure", method = "get")]
    async fn secure(&self, _auth: TestBearer) -> Json<PageInfo> {
        Json(PageInfo { page: 1, page_size: 1 })
    }

    #[oai(path = "/panic", method = "get")]
    async fn panic(&self) -> Json<PageInfo> {
        panic!("secret internal detail: db at 10.0.0.5");
    }
}

struct Harness {
    base: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    /// `POST /echo` with this content type and body.
    async fn post_echo(&self, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let req = self.http.post(format!("{}/echo", self.base)).header("content-type", content_type);
        req.body(body).send().await.expect("send")
    }
}

async fn spawn(server: ServerConfig) -> Harness {
    let service = OpenApiService::new(TestApi, "test", "1").server("/");
    let routes = Route::new().nest("/", service);
    let endpoint = stack(routes, &server, HttpMetrics::new(&Metrics::new()), &Default::default(), Default::default());
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind");
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().expect("tcp addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                endpoint,
                async {
                    let _ = stopped.await;
                },
                Some(Duration::from_secs(1)),
            )
            .await;
    });
    Harness { base: format!("http://{addr}"), http: reqwest::Client::new(), _stop: stop }
}

async fn default_harness() -> Harness {
    spawn(ServerConfig { max_body_bytes: 1024, ..Default::default() }).await
}

/// Asserts a problem+json answer with `status` and `code`; returns the body.
async fn problem(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let request_id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string());
    assert_eq!(body["requestId"], request_id.as_str(), "the body quotes the X-Request-Id header");
    body
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let h = default_harness().await;
    let resp = h.http.get(format!("{}/nowhere", h.base)).send().await.expect("send");
    problem(resp, 404, "NOT_FOUND").await;
    let resp = h.http.delete(format!("{}/echo", h.base)).send().await.expect("send");
    problem(resp, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_400() {
    let h = default_harness().await;
    for body in [r#"{"name": "x""#, r#"{"name": "x", "count": "three"}"#, r#"{"name": "x"}"#, "[]"] {
        let resp = h.post_echo("application/json", body).await;
        problem(resp, 400, "MALFORMED_REQUEST").await;
    }
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let h = default_harness().await;
    let resp = h.post_echo("text/plain", "name=x").await;
    problem(resp, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_with_or_without_content_length() {
    let h = default_harness().await;
    let big = format!(r#"{{"name": "{}", "count": 1}}"#, "x".repeat(4096));
    let resp = h.post_echo("application/json", big.clone()).await;
    problem(resp, 413, "PAYLOAD_TOO_LARGE").await;

    // Chunked: no Content-Length, the limit applies to the bytes that arrive.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        big.into_bytes().chunks(512).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let resp = h.post_echo("application/json", reqwest::Body::wrap_stream(futures::stream::iter(chunks))).await;
    problem(resp, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn bodies_within_the_limit_pass_chunked_or_not_and_bodiless_gets_are_untouched() {
    let h = default_harness().await;
    let body = r#"{"name": "ok", "count": 2}"#;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        body.as_bytes().chunks(5).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let resp = h.post_echo("application/json", reqwest::Body::wrap_stream(futures::stream::iter(chunks))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json")["count"], 2);

    let resp = h.http.get(format!("{}/items", h.base)).send().await.expect("send");
    assert_eq!(resp.status(), 200, "a GET without a body is not a 411");
}

#[tokio::test]
async fn out_of_range_and_unparsable_query_values_are_400_naming_the_parameter() {
    let h = default_harness().await;
    for (query, field) in [
        ("page=0", "page"),
        ("pageSize=101", "pageSize"),
        ("pageSize=0", "pageSize"),
        ("page=abc", "page"),
        ("page=9223372036854775807", "page"),
        ("page=99999999999999999999999", "page"),
        ("page=-1", "page"),
    ] {
        let resp = h.http.get(format!("{}/items?{query}", h.base)).send().await.expect("send");
        let body = problem(resp, 400, "VALIDATION_FAILED").await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
        assert!(body["errors"][0]["message"].is_string());
    }
    let resp = h.http.get(format!("{}/items?page=2&pageSize=50", h.base)).send().await.expect("send");
    assert_eq!(resp.json::<Value>().await.expect("json")["page_size"], 50);
}

#[tokio::test]
async fn bad_path_values_and_missing_resources_are_problems() {
    let h = default_harness().await;
    let resp = h.http.get(format!("{}/items/abc", h.base)).send().await.expect("send");
    let body = problem(resp, 400, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"][0]["field"], "path");
    assert!(!body.to_string().contains("param0"), "no internal names: {body}");
    let resp = h.http.get(format!("{}/items/2", h.base)).send().await.expect("send");
    let body = problem(resp, 404, "NOT_FOUND").await;
    assert_eq!(body["detail"], "no item 2");
}

#[tokio::test]
async fn a_missing_or_invalid_bearer_is_401_with_the_challenge() {
    let h = default_harness().await;
    for auth in [None, Some("Bearer bad"), Some("Basic Zm9vOmJhcg==")] {
        let mut req = h.http.get(format!("{}/secure", h.base));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.expect("send");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        problem(resp, 401, "UNAUTHENTICATED").await;
    }
    let resp = h.http.get(format!("{}/secure", h.base)).bearer_auth("good").send().await.expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_panic_is_a_500_that_leaks_nothing_and_the_server_keeps_serving() {
    let h = default_harness().await;
    let resp = h.http.get(format!("{}/panic", h.base)).send().await.expect("send");
    let body = problem(resp, 500, "INTERNAL_ERROR").await;
    assert!(!body.to_string().contains("10.0.0.5"), "{body}");
    let resp = h.http.get(format!("{}/items", h.base)).send().await.expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let h = default_harness().await;
    let resp = h.http.get(format!("{}/items", h.base)).header("x-request-id", "spa-42.a_b").send().await.expect("send");
    assert_eq!(resp.headers()["x-request-id"], "spa-42.a_b");
    for insane in ["has space", &"a".repeat(129), "semi;colon"] {
        let resp = h.http.get(format!("{}/nowhere", h.base)).header("x-request-id", insane).send().await.expect("send");
        let id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
        assert_ne!(id, insane);
        assert_eq!(id.len(), 36, "a generated UUID");
        let body = problem(resp, 404, "NOT_FOUND").await;
        assert_eq!(body["requestId"], id.as_str());
    }
}

#[tokio::test]
async fn cors_allows_the_configured_spa_origin_on_answers_and_errors() {
    let h = spawn(ServerConfig {
        cors_origins: vec!["https://app.example.com".into()],
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let resp = h
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/echo", h.base))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, authorization")
        .send()
        .await
        .expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(resp.headers()["access-control-allow-credentials"], "true");

    let resp = h
        .http
        .get(format!("{}/nowhere", h.base))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example.com");
    let exposed = resp.headers()["access-control-expose-headers"].to_str().expect("ascii").to_ascii_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("retry-after"), "{exposed}");
    assert!(resp.headers().get_all("vary").iter().any(|v| v == "Origin"), "answers vary on Origin");
    problem(resp, 404, "NOT_FOUND").await;

    // Another origin is served without CORS headers (the browser enforces the rest), never refused.
    let resp = h
        .http
        .get(format!("{}/items", h.base))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .expect("send");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_ne!(resp.status(), 403);
    assert!(resp.headers().get_all("vary").iter().any(|v| v == "Origin"));

    // The server's own origin (Swagger UI at /docs sends `Origin` on POST) is served as usual.
    let resp = h
        .http
        .post(format!("{}/echo", h.base))
        .header("origin", h.base.as_str())
        .json(&serde_json::json!({"name": "hi", "count": 1}))
        .send()
        .await
        .expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn the_finalized_spec_declares_the_framework_errors() {
    let mut spec: Value = serde_json::from_str(&OpenApiService::new(TestApi, "test", "1").spec()).expect("json");
    finalize(&mut spec, &AppFacts::default()).expect("finalize");
    let statuses = |path: &str, method: &str| -> Vec<String> {
        spec["paths"][path][method]["responses"].as_object().expect("responses").keys().cloned().collect()
    };
    assert_eq!(statuses("/echo", "post"), ["200", "400", "413", "415", "default"]);
    assert_eq!(statuses("/items", "get"), ["200", "400", "default"]);
    assert_eq!(statuses("/items/{id}", "get"), ["200", "400", "404", "default"]);
    assert_eq!(statuses("/secure", "get"), ["200", "401", "default"]);
    assert_eq!(
        spec["paths"]["/items/{id}"]["get"]["responses"]["404"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
}
