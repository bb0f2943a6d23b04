//! The HTTP surface: every module's controller combined under one OpenAPI service, the spec at
//! `/openapi.json`, Swagger UI at `/docs`, all behind the core middleware stack.

use std::sync::Arc;

use app_auth::{AuthApi, AuthVerifier};
use app_cache::CacheApi;
use app_core::{
    guard::Verifier,
    metrics::HttpMetrics,
    openapi::finalize,
    throttle::{ThrottleHandle, ThrottleRule, ThrottleTable, Throttler, declared, screen},
};
use app_health::HealthApi;
use app_jobs::{JobsApi, QueuesApi};
use app_library::LibraryApi;
use app_ratelimit::{RateLimitApi, RateLimits};
use app_users::UsersApi;
use bytes::Bytes;
use poem::{
    Endpoint, IntoEndpoint, IntoResponse, PathPattern, Request, Response,
    error::MethodNotAllowedError,
    http::{Method, StatusCode, header},
};
use poem_openapi::OpenApiService;

use shaku::HasComponent;

use crate::{AppConfig, module::AppModule};

/// The API title in the spec.
pub const TITLE: &str = "SPA Backend API";

const DESCRIPTION: &str = "\
The HTTP contract of the SPA backend. Generate the client from `/openapi.json` (committed as \
`openapi/openapi.json`).

**Errors** are RFC 9457 problem details (`application/problem+json`) with a stable `code` to switch \
on and the `requestId` to quote. Every operation declares its statuses; the `default` response \
covers the rest (unknown route `NOT_FOUND`, `METHOD_NOT_ALLOWED`, `INTERNAL_ERROR`).

**Request ids**: send `X-Request-Id` (1-128 of `A-Z a-z 0-9 . _ -`) to correlate; every response \
carries one, generated when absent.

**Limits**: request bodies are limited (1 MiB by default; 413 `PAYLOAD_TOO_LARGE`, also for \
chunked bodies). Lists take `page` (>= 1) and `pageSize` (1-100); out-of-range values are a 400, \
never clamped.

**Rate limits**: each `/api/v1` operation's description names the policies it passes (the \
default one, per user or else per client address, and any of its own). Its answers carry \
`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds) for the \
tightest policy and `RateLimit-Policy` / `RateLimit` for each; a refused request is 429 \
`RATE_LIMITED` with `Retry-After` and `retryAfter` (seconds), and is counted by none of them.";

/// The controllers of every module, combined.
type Apis = (AuthApi, UsersApi, LibraryApi, JobsApi, QueuesApi, RateLimitApi, CacheApi, HealthApi);

/// Each feature module adds its controller here.
fn apis(module: &AppModule, config: &AppConfig) -> Apis {
    (
        AuthApi::new(module, config.auth.cookie_secure(config.profile)),
        UsersApi::new(module),
        LibraryApi::new(module),
        JobsApi::new(module.resolve(), config.jobs.stream_heartbeat),
        QueuesApi::new(module.resolve()),
        RateLimitApi::new(module),
        CacheApi::new(module),
        HealthApi::new(module),
    )
}

fn service(module: &AppModule, config: &AppConfig) -> OpenApiService<Apis, ()> {
    OpenApiService::new(apis(module, config), TITLE, env!("CARGO_PKG_VERSION")).description(DESCRIPTION).server("/")
}

/// The finalized OpenAPI document (what `/openapi.json` serves and `app openapi` prints).
pub fn spec(module: &AppModule, config: &AppConfig) -> String {
    let raw = service(module, config).spec();
    // The operations declare their rate-limit rules as their endpoints are built.
    drop(service(module, config).into_endpoint());
    // The finalizer only adds entries to a document poem-openapi produced; it cannot fail on it.
    finalize(&raw, &declared()).unwrap_or(raw)
}

/// The rate-limit rules the operations declare, placed on their methods and paths in `raw`
/// (the spec). A rule naming an operation the spec lacks is a programming error, logged; that
/// operation's own transform still counts its policies (one round trip later).
fn throttle_table(raw: &str, rules: &[&'static ThrottleRule]) -> ThrottleTable {
    let spec = serde_json::from_str(raw).unwrap_or_default();
    let (table, missing) = ThrottleTable::new(&spec, rules);
    if !missing.is_empty() {
        tracing::error!(?missing, "rate-limit rules name operations the API does not have");
    }
    table
}

/// The API plus the two documents and the liveness answer. Dispatching those by an exact path
/// comparison keeps the API's own router the only router on the hot path (no outer `Route`, no
/// per-request data). `GET /health/live` is answered here, byte for byte as the health module's
/// operation (which stays the documented one, and serves every other method): a probe that load
/// balancers and orchestrators send every few seconds costs the middleware stack and nothing else.
struct Surface<E> {
    api: E,
    /// The bearer guard's session verifier, handed to API requests as request data (only to
    /// `/api/` requests: health probes and documents never pay for it).
    verifier: Verifier,
    /// The throttle guard's limiter and the operations' rules (every policy of a request is
    /// counted before routing).
    throttle: ThrottleHandle,
    /// On the Redis backend: the client whose batches carry the session check and the
    /// request's policies in one script call (or one pipeline, where their keys do not share a
    /// slot).
    redis: Option<app_redis::Redis>,
    spec: Bytes,
    swagger: Bytes,
    spec_pattern: PathPattern,
    docs_pattern: PathPattern,
    live_pattern: PathPattern,
}

/// The liveness answer: what the health module's `healthLive` operation writes.
const LIVE: &[u8] = br#"{"status":"ok"}"#;

impl<E: Endpoint> Endpoint for Surface<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        if req.uri().path().starts_with("/api/") {
            match &self.redis {
                Some(redis) => redis.batched(screen(&mut req, &self.verifier, Some(&self.throttle))).await?,
                None => screen(&mut req, &self.verifier, Some(&self.throttle)).await?,
            }
            return self.api.call(req).await.map(IntoResponse::into_response);
        }
        let (body, content_type, pattern) = match req.uri().path() {
            "/health/live" if req.method() == Method::GET => {
                let mut resp =
                    Response::builder().content_type("application/json; charset=utf-8").body(Bytes::from_static(LIVE));
                resp.set_data(self.live_pattern.clone());
                return Ok(resp);
            }
            "/openapi.json" => (&self.spec, "application/json", &self.spec_pattern),
            "/docs" => (&self.swagger, "text/html; charset=utf-8", &self.docs_pattern),
            "/docs/" => {
                return Ok(StatusCode::PERMANENT_REDIRECT.with_header(header::LOCATION, "/docs").into_response());
            }
            _ => return self.api.call(req).await.map(IntoResponse::into_response),
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(MethodNotAllowedError.into());
        }
        let mut resp = Response::builder().content_type(content_type).body(body.clone());
        resp.set_data(pattern.clone());
        Ok(resp)
    }
}

/// The rate limiter as the throttle guard's port.
fn throttler(module: &AppModule) -> Arc<dyn Throttler> {
    let limits: Arc<dyn RateLimits> = module.resolve();
    limits
}

/// Every route of the app behind the middleware stack.
pub fn routes(
    module: &AppModule,
    config: &AppConfig,
    state: &app_redis::SharedState,
    metrics: HttpMetrics,
) -> impl Endpoint<Output = Response> + use<> {
    let service = service(module, config);
    let raw = service.spec();
    let swagger = service.swagger_ui_html();
    // Building the endpoint records the rate-limit rules the operations declare.
    let api = service.into_endpoint();
    let rules = declared();
    let spec = finalize(&raw, &rules).unwrap_or_else(|_| raw.clone());
    // Swagger UI embeds the document; give it the finalized one so it shows every error status.
    let swagger = swagger.replace(&raw, &spec);
    let surface = Surface {
        api,
        verifier: Verifier(Arc::new(AuthVerifier(module.resolve()))),
        throttle: ThrottleHandle { throttler: throttler(module), table: Arc::new(throttle_table(&raw, &rules)) },
        redis: state.redis().cloned(),
        spec: spec.into(),
        swagger: swagger.into(),
        spec_pattern: PathPattern("/openapi.json".into()),
        docs_pattern: PathPattern("/docs".into()),
        live_pattern: PathPattern("/health/live".into()),
    };
    app_core::http::stack(surface, &config.server, metrics)
}

/// The spec without any configuration or external service: the modules are built on the
/// memory backend and an in-memory SQLite database (the document depends on types only).
pub async fn standalone_spec() -> Result<String, app_database::DbError> {
    let config = AppConfig::default();
    let database = app_database::Database::connect(&app_database::DatabaseConfig {
        url: "sqlite::memory:".into(),
        ..config.database.clone()
    })
    .await?;
    let module = crate::module::build_modules(
        &config,
        &crate::app::Backends::single(app_redis::SharedState::Memory),
        database.clone(),
        app_core::metrics::Metrics::new(),
        crate::module::Overrides::default(),
    );
    let spec = spec(&module, &config);
    database.close().await;
    Ok(spec)
}
