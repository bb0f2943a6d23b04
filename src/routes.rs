//! The HTTP surface: every module's controllers combined into one API, the spec at
//! `/openapi.json`, Swagger UI at `/docs`, all behind the core middleware stack.

use std::sync::Arc;

use app_core::{
    ErrorCode,
    config::{Config, ServerConfig},
    context::RequestScope,
    guard::{GuardPorts, Guards, Verifier},
    http::CorsHeaders,
    metrics::HttpMetrics,
    module::{Built, Router, compose},
    openapi::{AppFacts, BodyContracts, finalize},
    route::AllowTable,
    throttle::{Limiter, ThrottleHandle, ThrottleTable, screen},
    versions::UserVersions,
};
use app_redis::SharedState;
use bytes::Bytes;
use poem::{
    Endpoint, IntoResponse, Request, Response,
    error::MethodNotAllowedError,
    http::{Method, StatusCode, header},
};
use serde_json::{Value, json};

use crate::{
    app::StartError,
    docs::{Asset, Docs},
};

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

/// The composed API of a built app: its router, its finalized spec, and the guards' ports.
struct Api {
    endpoint: Router,
    spec: String,
    cors: CorsHeaders,
    allow: Arc<AllowTable>,
    contracts: BodyContracts,
    verifier: Option<Verifier>,
    throttle: Option<ThrottleHandle>,
}

/// Composes the controllers of `built` into one API and one finalized spec. A rate-limit rule
/// naming an operation the app lacks, or a policy the limiter does not define, is an error.
fn api(mut built: Built) -> Result<Api, app_core::ModuleError> {
    let error = |message: String| app_core::ModuleError { module: "app", message };
    let composed = compose(std::mem::take(&mut built.controllers)).map_err(error)?;
    let mut spec = composed.spec;
    describe(&mut spec);
    let verifier = built.get::<Verifier>().map(|v| (*v).clone());
    let limiter = built.get::<Limiter>();
    if let Some(limiter) = &limiter {
        for rule in &composed.rules {
            if let Some(policy) = rule.all_policies().find(|p| !limiter.0.has_policy(p)) {
                return Err(error(format!(
                    "the operation `{}` names the rate-limit policy `{policy}`, which `rate_limit.policies` does not define",
                    rule.operation
                )));
            }
        }
    }
    let table = ThrottleTable::new(&spec, &composed.rules).map_err(error)?;
    let bearer_codes: &[ErrorCode] = verifier.as_ref().map_or(&[], |v| v.0.codes());
    let facts = AppFacts { rules: &composed.rules, codes: &built.error_codes, bearer_codes };
    finalize(&mut spec, &facts).map_err(|e| error(e.to_string()))?;
    for patch in &built.spec_patches {
        patch(&mut spec);
    }
    let cors = CorsHeaders::from_spec(&spec);
    let allow = Arc::new(AllowTable::new(&spec));
    let contracts = BodyContracts::new(&spec).map_err(error)?;
    let spec = serde_json::to_string_pretty(&spec).map_err(|e| error(e.to_string()))?;
    let throttle = limiter.map(|l| ThrottleHandle { throttler: l.0.clone(), table: Arc::new(table) });
    Ok(Api { endpoint: composed.endpoint, spec, cors, allow, contracts, verifier, throttle })
}

/// The document's own parts: version, title, description, server.
fn describe(spec: &mut Value) {
    if let Some(doc) = spec.as_object_mut() {
        doc.insert("openapi".into(), json!("3.0.0"));
        doc.insert(
            "info".into(),
            json!({ "title": TITLE, "version": env!("CARGO_PKG_VERSION"), "description": DESCRIPTION }),
        );
        doc.insert("servers".into(), json!([{ "url": "/" }]));
    }
}

/// The finalized OpenAPI document of `modules`, without any configuration or external service
/// (what `/openapi.json` serves and `app openapi` prints): the modules are built on their
/// defaults, the memory backend and an in-memory SQLite database (the document depends on
/// types only).
pub async fn spec(modules: app_core::module::ModuleSet) -> Result<String, StartError> {
    let mut config = Config::defaults(&modules.sections());
    config.get_mut::<app_database::DatabaseConfig>().url = "sqlite::memory:".into();
    config.finish();
    crate::app::with_built(modules, config, |built| Ok(api(built)?.spec)).await?
}

/// The API plus the two documents and the liveness answer. Dispatching those by an exact path
/// comparison keeps the API's own router the only router on the hot path (no outer `Route`, no
/// per-request data). `GET /health/live` is answered here, byte for byte as the health module's
/// operation (which stays the documented one, and serves every other method): a probe that load
/// balancers and orchestrators send every few seconds costs the middleware stack and nothing else.
struct Surface {
    api: Router,
    /// The guards' ports (the session verifier; the limiter and the operations' rules, every
    /// policy of a request counted before routing), handed to API requests as request data
    /// (health probes and documents never pay for them).
    guards: Arc<GuardPorts>,
    /// The request-body contracts of the operations, from the spec.
    contracts: BodyContracts,
    /// The methods each path takes (`OPTIONS` answers with them).
    allow: Arc<AllowTable>,
    /// On the Redis backend: the client whose batches carry the session check and the
    /// request's policies in one script call (or one pipeline, where their keys do not share a
    /// slot).
    redis: Option<app_redis::Redis>,
    /// Users' versions, read with the default policy's count (when a module keeps copies).
    versions: Option<Arc<UserVersions>>,
    spec: Bytes,
    docs: Docs,
    /// The documents' and the liveness answer's metrics labels.
    spec_pattern: Arc<str>,
    docs_pattern: Arc<str>,
    live_pattern: Arc<str>,
}

/// The liveness answer: what the health module's `healthLive` operation writes.
const LIVE: &[u8] = br#"{"status":"ok"}"#;

impl Endpoint for Surface {
    type Output = Response;

    /// Not an `async fn`: its state machine would keep the request twice (the argument, and the
    /// binding it is moved into), and copy it from one to the other on every request.
    #[allow(clippy::manual_async_fn)] // the point: see above
    fn call(&self, mut req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        async move {
            if req.method() == Method::OPTIONS {
                // (A CORS preflight never gets here: the CORS layer answers it.)
                if let Some(allow) = self.allow.allowed(req.uri().path()) {
                    return Ok(StatusCode::NO_CONTENT.with_header(header::ALLOW, allow.to_owned()).into_response());
                }
            }
            if req.uri().path().starts_with("/api/") {
                self.contracts.check(&mut req).await?;
                let versions = self.versions.as_deref();
                match &self.redis {
                    Some(redis) => redis.batched(screen(&mut req, &self.guards, versions)).await?,
                    None => screen(&mut req, &self.guards, versions).await?,
                }
                return self.api.call(req).await.map(IntoResponse::into_response);
            }
            // Operations outside `/api/` may look at a bearer token too (readiness details for admins).
            if self.guards.verifier.is_some() && req.headers().contains_key(header::AUTHORIZATION) {
                req.set_data(Guards::new(self.guards.clone()));
            }
            let (body, content_type, pattern) = match req.uri().path() {
                "/health/live" if req.method() == Method::GET => {
                    RequestScope::record_route(&self.live_pattern);
                    return Ok(Response::builder()
                        .content_type("application/json; charset=utf-8")
                        .body(Bytes::from_static(LIVE)));
                }
                "/openapi.json" => (&self.spec, "application/json", &self.spec_pattern),
                "/docs/" => {
                    return Ok(StatusCode::PERMANENT_REDIRECT.with_header(header::LOCATION, "/docs").into_response());
                }
                path => match Asset::at(path) {
                    Some(asset) => {
                        if req.method() != Method::GET && req.method() != Method::HEAD {
                            return Err(MethodNotAllowedError.into());
                        }
                        RequestScope::record_route(&self.docs_pattern);
                        return Ok(self.docs.answer(&asset));
                    }
                    None => return self.api.call(req).await.map(IntoResponse::into_response),
                },
            };
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return Err(MethodNotAllowedError.into());
            }
            RequestScope::record_route(pattern);
            Ok(Response::builder().content_type(content_type).body(body.clone()))
        }
    }
}

/// Every route of a built app behind the middleware stack.
pub(crate) fn routes(
    built: Built,
    config: &Config,
    metrics: HttpMetrics,
) -> Result<impl Endpoint<Output = Response> + use<>, app_core::ModuleError> {
    let redis = built.get::<SharedState>().and_then(|s| s.redis().cloned());
    // Versions are read by the limiter's script: only where a module keeps copies.
    let versions = built.get::<UserVersions>().filter(|v| v.is_read());
    let api = api(built)?;
    let (cors, allow) = (api.cors, api.allow);
    let surface = Surface {
        api: api.endpoint,
        guards: Arc::new(GuardPorts { verifier: api.verifier, throttle: api.throttle }),
        contracts: api.contracts,
        allow: allow.clone(),
        redis,
        versions,
        docs: Docs::new(),
        spec: api.spec.into(),
        spec_pattern: "/openapi.json".into(),
        docs_pattern: "/docs".into(),
        live_pattern: "/health/live".into(),
    };
    Ok(app_core::http::stack(surface, config.get::<ServerConfig>(), metrics, &cors, allow))
}
