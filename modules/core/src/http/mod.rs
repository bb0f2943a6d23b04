//! The middleware stack every route runs behind, outermost first:
//!
//! 1. [`RequestContext`]: reads or makes the request id, opens the request's tracing span (so
//!    every log line of the request carries `request_id`), catches panics (a logged 500, never a
//!    dropped connection), turns every error into problem+json, records metrics, writes the
//!    access log line and sets `X-Request-Id` on the response;
//! 2. when SPA origins are configured: CORS, with error normalization inside it, so error
//!    answers carry CORS headers and the SPA can read them;
//! 3. the body limit (413 for `Content-Length` over the limit and for chunked bodies that grow past
//!    it); without CORS, layer 1 enforces it itself, one layer less on every request.
//!
//! `src/` and the tests build the stack through the one function [`stack`].

mod body_limit;
mod normalize;
mod request_context;

use poem::{
    Endpoint, EndpointExt,
    endpoint::EitherEndpoint,
    http::{HeaderName, Method, header},
    middleware::Cors,
};

pub use body_limit::BodyLimit;
pub use normalize::{Normalize, normalize};
pub use request_context::RequestContext;

use crate::{config::ServerConfig, metrics::HttpMetrics};

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
    let limit = server.max_body_bytes;
    if server.cors_origins.is_empty() {
        // Nothing sits between the two, so the outer layer enforces the body limit itself.
        return EitherEndpoint::A(routes.with(RequestContext::new(metrics, Some(limit))));
    }
    let cors = Cors::new()
        .allow_origins(server.cors_origins.iter().map(String::as_str))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers(ALLOWED_HEADERS.iter().map(|h| HeaderName::from_static(h)))
        .expose_headers(EXPOSED_HEADERS.iter().map(|h| HeaderName::from_static(h)))
        .max_age(600);
    EitherEndpoint::B(
        routes.with(BodyLimit::new(limit)).with(Normalize).with(cors).with(RequestContext::new(metrics, None)),
    )
}

/// Whether a response body is already JSON (our problem+json, or a deliberate JSON document
/// such as the readiness report) and must be left alone.
pub(crate) fn is_json(resp: &poem::Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with(crate::problem::PROBLEM_JSON))
}
