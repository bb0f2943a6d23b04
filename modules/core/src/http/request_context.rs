//! The outermost middleware: request id, tracing span, panic catching, error normalization,
//! access log, metrics.

use std::{
    sync::{Arc, LazyLock},
    time::Instant,
};

use futures::FutureExt;
use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, header},
};
use std::panic::AssertUnwindSafe;
use tracing::Instrument;

use super::{body_limit::enforce, normalize};
use crate::{
    ApiError, RequestId,
    context::RequestScope,
    metrics::{HttpLabels, HttpMetrics, RouteLabel, method_label},
    route::AllowTable,
};

/// The route label of requests no route matched (bounded cardinality for 404 scans).
static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unmatched"));

/// Middleware that scopes each request in its id, span and metrics.
#[derive(Clone)]
pub struct RequestContext {
    metrics: HttpMetrics,
    body_limit: Option<u64>,
    allow: Arc<AllowTable>,
}

impl RequestContext {
    /// Records into `metrics`. With `body_limit`, also enforces the body limit (saving a layer
    /// when nothing, such as CORS, must sit between the two). `allow`: the methods each path
    /// takes, for 405 answers.
    pub fn new(metrics: HttpMetrics, body_limit: Option<u64>, allow: Arc<AllowTable>) -> Self {
        Self { metrics, body_limit, allow }
    }
}

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestContextEndpoint {
            inner: ep,
            metrics: self.metrics.clone(),
            body_limit: self.body_limit,
            allow: self.allow.clone(),
        }
    }
}

/// The endpoint made by [`RequestContext`].
pub struct RequestContextEndpoint<E> {
    inner: E,
    metrics: HttpMetrics,
    body_limit: Option<u64>,
    allow: Arc<AllowTable>,
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    /// Not an `async fn`: its state machine would keep the request twice (the argument, and the
    /// binding it is moved into), and copy it from one to the other on every request.
    #[allow(clippy::manual_async_fn)] // the point: see above
    fn call(&self, mut req: Request) -> impl Future<Output = Result<Response>> + Send {
        async move {
            let started = Instant::now();
            let id = req
                .headers()
                .get(RequestId::HEADER)
                .and_then(RequestId::from_header)
                .unwrap_or_else(RequestId::generate);
            let method = req.method().clone();
            // A `Uri` clone shares its bytes: no copy of the path on the hot path.
            let uri = req.uri().clone();
            let span = tracing::info_span!("request", request_id = %id, method = %method, path = %uri.path());

            let serve = async {
                // A panic becomes a logged 500 (never a dropped connection). The panic message was
                // already printed by the panic hook; it may hold internals, so the client gets none.
                let limited = match self.body_limit {
                    Some(limit) => enforce(&mut req, limit).await,
                    None => Ok(()),
                };
                let result = match limited {
                    Err(too_large) => Err(too_large.into()),
                    Ok(()) => match AssertUnwindSafe(self.inner.call(req)).catch_unwind().await {
                        Ok(result) => result.map(IntoResponse::into_response),
                        Err(_panic) => Err(ApiError::internal("a request handler panicked").into()),
                    },
                };
                let resp = normalize(result, &method, uri.path(), &self.allow);
                let elapsed = started.elapsed();
                let status = resp.status();
                // Microsecond resolution, printed as milliseconds.
                let latency_ms = || elapsed.as_micros() as f64 / 1e3;
                if status.is_server_error() {
                    tracing::error!(status = status.as_u16(), latency_ms = latency_ms(), "request failed");
                } else {
                    tracing::info!(status = status.as_u16(), latency_ms = latency_ms(), "request completed");
                }
                (resp, elapsed)
            };
            // The inner stack's future is large; boxing it once means the scope and span
            // wrappers move a pointer instead of copying the whole state machine.
            let ((mut resp, elapsed), scope) = RequestScope::new(id).run(Box::pin(serve).instrument(span)).await;

            // The router records the path template it matched, also for an error answer (a 405, a
            // bad parameter) on a known path.
            let route = RouteLabel(scope.route().unwrap_or(&UNMATCHED).clone());
            let labels = HttpLabels { method: method_label(&method), route, status: resp.status().as_u16() };
            self.metrics.observe(&labels, elapsed);
            // Room for what follows (the id, nosniff, five rate-limit headers, cache-control) at
            // once: the map otherwise grows, and rehashes, twice on the way.
            resp.headers_mut().reserve(8);
            // No answer is to be sniffed into another type (a JSON error rendered as HTML, say).
            resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            // `/api/` responses carry the state of the rate-limit policies evaluated for them.
            scope.limits().write_headers(resp.headers_mut());
            resp.headers_mut().insert(RequestId::HEADER, scope.into_id().into_header_value());
            // API answers carry tokens and personal data: no cache may keep them unless a route
            // says otherwise.
            if uri.path().starts_with("/api/") && !resp.headers().contains_key(header::CACHE_CONTROL) {
                resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            Ok(resp)
        }
    }
}
