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
mod cors;
mod lanes;
mod normalize;
mod request_context;
mod serve;
mod watchdog;

use std::sync::Arc;

use futures::future::Either;
use poem::{Endpoint, EndpointExt, Request, Response, http::header};

pub use body_limit::BodyLimit;
pub use cors::Cors;
pub use lanes::on_lane;
pub use normalize::{Normalize, normalize};
/// Request headers, as the ports that read them (client address behind proxies) see them.
pub use poem::http::{HeaderMap, HeaderValue};
pub use request_context::RequestContext;
pub use serve::{ConnectionLimits, serve};

use crate::{config::ServerConfig, metrics::HttpMetrics, route::AllowTable};

/// The headers CORS lets an SPA on another origin send and read: the framework's own, plus what
/// the app's operations take and answer (read off the spec by [`CorsHeaders::from_spec`], so a
/// module's header needs no line here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsHeaders {
    /// Request headers the SPA may send (`Access-Control-Allow-Headers`).
    pub request: Vec<String>,
    /// Response headers the SPA may read (`Access-Control-Expose-Headers`).
    pub exposed: Vec<String>,
}

impl Default for CorsHeaders {
    fn default() -> Self {
        Self {
            request: ["authorization", "content-type", "x-request-id", "last-event-id"].map(String::from).to_vec(),
            exposed: ["x-request-id", "location", "retry-after", "www-authenticate", "content-disposition"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl CorsHeaders {
    /// The framework's headers plus every header parameter and response header in `spec`.
    pub fn from_spec(spec: &serde_json::Value) -> Self {
        let mut headers = Self::default();
        let operations =
            spec.get("paths").and_then(serde_json::Value::as_object).into_iter().flat_map(|paths| {
                paths.values().filter_map(serde_json::Value::as_object).flat_map(|item| item.values())
            });
        let add = |list: &mut Vec<String>, name: &str| {
            let name = name.to_ascii_lowercase();
            if !list.contains(&name) {
                list.push(name);
            }
        };
        for op in operations {
            for param in op.get("parameters").and_then(serde_json::Value::as_array).into_iter().flatten() {
                if param.get("in").and_then(serde_json::Value::as_str) == Some("header")
                    && let Some(name) = param.get("name").and_then(serde_json::Value::as_str)
                {
                    add(&mut headers.request, name);
                }
            }
            let responses = op.get("responses").and_then(serde_json::Value::as_object).into_iter().flatten();
            for (_, response) in responses {
                for name in
                    response.get("headers").and_then(serde_json::Value::as_object).into_iter().flatten().map(|(n, _)| n)
                {
                    add(&mut headers.exposed, name);
                }
            }
        }
        headers
    }
}

/// Wraps `routes` in the full middleware stack.
pub fn stack<E>(
    routes: E,
    server: &ServerConfig,
    metrics: HttpMetrics,
    cors_headers: &CorsHeaders,
    allow: Arc<AllowTable>,
) -> impl Endpoint<Output = Response> + use<E>
where
    E: Endpoint + 'static,
{
    let limit = server.max_body_bytes;
    if server.cors_origins.is_empty() {
        // Nothing sits between the two, so the outer layer enforces the body limit itself.
        return Stack::Plain(routes.with(RequestContext::new(metrics, Some(limit), allow)));
    }
    let cors = Cors::new(&server.cors_origins, cors_headers);
    Stack::Cors(
        routes
            .with(BodyLimit::new(limit))
            .with(Normalize(allow.clone()))
            .with(cors)
            .with(RequestContext::new(metrics, None, allow)),
    )
}

/// The stack with or without CORS. Unlike poem's `EitherEndpoint` (an `async fn` that keeps the
/// request and the chosen stack's future in a state machine of its own), a call hands back the
/// chosen stack's future itself: one layer less to build, move and poll on every request.
enum Stack<A, B> {
    Plain(A),
    Cors(B),
}

impl<A, B> Endpoint for Stack<A, B>
where
    A: Endpoint<Output = Response>,
    B: Endpoint<Output = Response>,
{
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        match self {
            Self::Plain(stack) => Either::Left(stack.call(req)),
            Self::Cors(stack) => Either::Right(stack.call(req)),
        }
    }
}

/// Whether a response body is already JSON (our problem+json, or a deliberate JSON document
/// such as the readiness report) and must be left alone.
pub(crate) fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with(crate::problem::PROBLEM_JSON))
}
