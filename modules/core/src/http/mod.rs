//! The middleware stack every route runs behind, outermost first:
//!
//! 1. [`RequestContext`]: reads or makes the request id, opens the request's tracing span (so
//!    every log line of the request carries `request_id`), records metrics, writes the access
//!    log line, sets `X-Request-Id` on the response, and turns anything that escaped into
//!    problem+json;
//! 2. CORS for the configured SPA origins (inside 1, so even CORS refusals are problem+json);
//! 3. error normalization (inside CORS, so error answers carry CORS headers and the SPA can read them);
//! 4. the body limit (413 for `Content-Length` over the limit and for chunked bodies that grow past it);
//! 5. panic catching (a panic becomes a logged 500, never a dropped connection).
//!
//! `src/` and the tests build the stack through the one function [`stack`].

mod body_limit;
mod normalize;
mod request_context;

use poem::{
    Endpoint, EndpointExt,
    http::{HeaderName, Method, header},
    middleware::{CatchPanic, Cors},
};

pub use body_limit::BodyLimit;
pub use normalize::{Normalize, normalize};
pub use request_context::RequestContext;

use crate::{ApiError, config::ServerConfig, metrics::HttpMetrics};

/// Headers the SPA may read on cross-origin responses.
const EXPOSED_HEADERS: &[&str] = &[
    "x-request-id",
    "location",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit",
    "ratelimit-policy",
];

/// Headers the SPA may send on cross-origin requests.
const ALLOWED_HEADERS: &[&str] = &["authorization", "content-type", "x-request-id", "x-lock-token", "last-event-id"];

/// Wraps `routes` in the full middleware stack.
pub fn stack<E>(
    routes: E,
    server: &ServerConfig,
    metrics: HttpMetrics,
) -> impl Endpoint<Output = poem::Response> + use<E>
where
    E: Endpoint + 'static,
{
    let inner = routes
        .with(CatchPanic::new().with_handler(|_panic: Box<dyn std::any::Any + Send>| {
            // The panic message itself was already printed by the panic hook; it may hold
            // internals, so the client gets the generic 500.
            ApiError::internal("a request handler panicked")
        }))
        .with(BodyLimit::new(server.max_body_bytes))
        .with(Normalize);
    let cors = (!server.cors_origins.is_empty()).then(|| {
        Cors::new()
            .allow_origins(server.cors_origins.iter().map(String::as_str))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers(ALLOWED_HEADERS.iter().map(|h| HeaderName::from_static(h)))
            .expose_headers(EXPOSED_HEADERS.iter().map(|h| HeaderName::from_static(h)))
            .max_age(600)
    });
    inner.with_if(cors.is_some(), cors.unwrap_or_default()).with(RequestContext::new(metrics))
}

/// Whether a response body is already JSON (our problem+json, or a deliberate JSON document
/// such as the readiness report) and must be left alone.
pub(crate) fn is_json(resp: &poem::Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with(crate::problem::PROBLEM_JSON))
}
