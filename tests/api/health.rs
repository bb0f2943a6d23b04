//! `/health/live`, `/health/ready` and `/metrics` against real Redis and real databases.

use std::time::{Duration, Instant};

use app_core::testing::{RedisServer, TestDatabase, eventually};
use serde_json::Value;

use crate::support::{Backend, app, spawn_app};

const PATIENCE: Duration = Duration::from_secs(10);

/// An app on `url` (a test's own Redis), once it reports ready.
async fn ready_app_on(url: String) -> crate::support::TestApp {
    let app = app().backend(Backend::Redis(url)).spawn().await;
    assert!(eventually(PATIENCE, || async { app.ready().await.status() == 200 }).await, "the app becomes ready");
    app
}

async fn ready_body(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    (status, resp.json().await.expect("json report"))
}

#[tokio::test]
async fn liveness_answers_ok() {
    let app = spawn_app().await;
    let resp = app.live().await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let content_type = resp.headers()["content-type"].to_str().expect("ascii").to_owned();
    let body = resp.bytes().await.expect("body");
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), serde_json::json!({"status": "ok"}));

    // The surface answers GET itself; it must be exactly what the documented operation answers.
    use poem::{Endpoint, IntoEndpoint};
    let operation = poem_openapi::OpenApiService::new(
        app_health::HealthApi::new(&*app.container::<app_health::HealthContainer>()),
        "t",
        "1",
    )
    .into_endpoint();
    let req = poem::Request::builder().method(poem::http::Method::GET).uri_str("/health/live").finish();
    let documented = operation.call(req).await.expect("the operation answers");
    assert_eq!(documented.headers()["content-type"].to_str().expect("ascii"), content_type);
    assert_eq!(documented.into_body().into_bytes().await.expect("body"), body);

    // Other methods still go to the router.
    let post = app.request(reqwest::Method::POST, "/health/live").send().await.expect("sent");
    assert_eq!(post.status(), 405);
}

#[tokio::test]
async fn readiness_shows_the_statuses_to_anyone_and_the_facts_to_admins_only() {
    let app = spawn_app().await;
    let (status, body) = ready_body(app.ready().await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["redis"], serde_json::json!({"status": "ok"}), "no versions, memory or clients");
    assert_eq!(body["checks"]["database"], serde_json::json!({"status": "ok"}));
    let (_, user) = app.user().await;
    let (_, body) = ready_body(app.ready_as(&user.access).await).await;
    assert_eq!(body["checks"]["redis"], serde_json::json!({"status": "ok"}), "a user is not an admin");
    let (_, admin) = app.admin().await;
    let (status, body) = ready_body(app.ready_as(&admin.access).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    let redis = &body["checks"]["redis"];
    assert_eq!(redis["status"], "ok");
    assert_eq!(redis["backend"], "redis");
    assert!(redis["version"].as_str().is_some_and(|v| v.starts_with(char::is_numeric)), "{redis}");
    assert_eq!(redis["role"], "master");
    assert!(redis["connectedClients"].as_u64().is_some_and(|n| n >= 1), "{redis}");
    assert!(redis["usedMemory"].as_u64().is_some_and(|n| n > 0), "{redis}");
    assert!(redis["uptimeSeconds"].is_u64() && redis["latencyMs"].is_number(), "{redis}");
    assert!(redis["maxmemoryPolicy"].is_string(), "{redis}");
    let db = &body["checks"]["database"];
    assert_eq!((db["status"].as_str(), db["backend"].as_str()), (Some("ok"), Some("sqlite")));
    assert!(db["latencyMs"].is_number());
    assert!(body.get("failing").is_none());
}

#[tokio::test]
async fn readiness_on_the_memory_backend_says_so() {
    let app = app().backend(Backend::Memory).spawn().await;
    let (_, admin) = app.admin().await;
    let (status, body) = ready_body(app.ready_as(&admin.access).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["checks"]["redis"]["backend"], "memory");
    assert_eq!(body["checks"]["redis"]["status"], "ok");
}

#[tokio::test]
async fn readiness_runs_on_postgresql_when_configured() {
    let Some(db) = TestDatabase::postgres().await else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL part skipped (CI sets it)");
        return;
    };
    let app = app().database(db).spawn().await;
    let (_, admin) = app.admin().await;
    let (status, body) = ready_body(app.ready_as(&admin.access).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"]["backend"], "postgres");
}

#[tokio::test]
async fn readiness_is_503_naming_redis_while_it_is_stopped_and_recovers_by_itself() {
    let redis = RedisServer::start();
    let app = ready_app_on(redis.url()).await;

    redis.stop();
    let started = Instant::now();
    let (status, body) = ready_body(app.ready().await).await;
    assert!(started.elapsed() < Duration::from_secs(3), "answers within the check timeout");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "down");
    assert_eq!(body["failing"], serde_json::json!(["redis"]));
    assert_eq!(body["checks"]["redis"]["status"], "down");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert!(body["checks"]["redis"].get("error").is_none(), "why is for admins (whose sessions live in Redis)");
    assert!(!body.to_string().contains("127.0.0.1"), "no addresses in a public answer: {body}");
    assert_eq!(app.live().await.status(), 200, "liveness ignores dependencies");

    redis.restart();
    assert!(eventually(PATIENCE, || async { app.ready().await.status() == 200 }).await, "recovers without a restart");
}

#[tokio::test]
async fn the_app_starts_while_redis_is_down_and_becomes_ready_when_it_appears() {
    let redis = RedisServer::start();
    redis.stop();
    let app = app().backend(Backend::Redis(redis.url())).spawn().await;
    let (status, body) = ready_body(app.ready().await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["redis"]));

    redis.restart();
    assert!(eventually(PATIENCE, || async { app.ready().await.status() == 200 }).await);
}

#[tokio::test]
async fn a_frozen_redis_makes_readiness_fail_fast_instead_of_hanging() {
    let redis = RedisServer::start();
    let app = ready_app_on(redis.url()).await;

    redis.freeze();
    let started = Instant::now();
    let (status, body) = ready_body(app.ready().await).await;
    let waited = started.elapsed();
    redis.thaw();
    assert_eq!(status, 503, "{body}");
    assert!(waited < Duration::from_secs(3), "bounded by the timeouts, took {waited:?}");
    assert!(eventually(PATIENCE, || async { app.ready().await.status() == 200 }).await, "recovers after the thaw");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_eq!(app.live().await.status(), 200);
    }
    assert_eq!(app.get("/no/such/route").await.status(), 404);
    // API routes: a path without parameters, an error answer on a known path (405), and a path
    // with a parameter (a malformed id: 400), each under its template.
    let (_, tokens) = app.user().await;
    assert_eq!(app.me(&tokens.access).await.status(), 200);
    assert_eq!(
        app.authed(reqwest::Method::DELETE, "/api/v1/users/me", &tokens.access).send().await.expect("sent").status(),
        405
    );
    assert_eq!(app.get_item(&tokens.access, "not-an-id").await.status(), 400);
    let text = app.metrics().await;
    for line in [
        r#"http_request_duration_seconds_count{method="GET",route="/api/v1/users/me",status="200"} 1"#,
        r#"http_request_duration_seconds_count{method="DELETE",route="/api/v1/users/me",status="405"} 1"#,
        r#"http_request_duration_seconds_count{method="GET",route="/api/v1/library/:param0",status="400"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert!(
        text.contains(r#"http_request_duration_seconds_count{method="GET",route="/health/live",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn the_app_runs_on_a_redis_cluster_url() {
    let cluster = app_core::testing::RedisCluster::start();
    let app = ready_app_on(cluster.url()).await;
    let (_, admin) = app.admin().await;
    let (_, body) = ready_body(app.ready_as(&admin.access).await).await;
    assert_eq!(body["checks"]["redis"]["backend"], "redis");
    assert_eq!(body["checks"]["redis"]["role"], "master");
}
