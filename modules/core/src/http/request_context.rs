//! The outermost middleware: request id, tracing span, access log, metrics.

use std::{
    sync::{Arc, LazyLock},
    time::Instant,
};

use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result};
use tracing::Instrument;

use super::normalize;
use crate::{
    RequestId,
    metrics::{HttpLabels, HttpMetrics, RouteLabel, method_label},
};

/// The route label of requests no route matched (bounded cardinality for 404 scans).
static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unmatched"));

/// Middleware that scopes each request in its id, span and metrics.
#[derive(Clone)]
pub struct RequestContext {
    metrics: HttpMetrics,
}

impl RequestContext {
    /// Records into `metrics`.
    pub fn new(metrics: HttpMetrics) -> Self {
        Self { metrics }
    }
}

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestContextEndpoint { inner: ep, metrics: self.metrics.clone() }
    }
}

/// The endpoint made by [`RequestContext`].
pub struct RequestContextEndpoint<E> {
    inner: E,
    metrics: HttpMetrics,
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let started = Instant::now();
        let id =
            req.headers().get(RequestId::HEADER).and_then(RequestId::from_header).unwrap_or_else(RequestId::generate);
        let method = req.method().clone();
        // A `Uri` clone shares its bytes: no copy of the path on the hot path.
        let uri = req.uri().clone();
        let span = tracing::info_span!("request", request_id = %id, method = %method, path = %uri.path());

        let serve = async {
            let result = self.inner.call(req).await.map(IntoResponse::into_response);
            let resp = normalize(result, &method, uri.path());
            let status = resp.status();
            // Microsecond resolution, printed as milliseconds.
            let latency_ms = started.elapsed().as_micros() as f64 / 1e3;
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), latency_ms, "request failed");
            } else {
                tracing::info!(status = status.as_u16(), latency_ms, "request completed");
            }
            resp
        };
        let mut resp = id.clone().scope(serve.instrument(span)).await;

        let route =
            resp.data::<PathPattern>().map_or_else(|| RouteLabel(UNMATCHED.clone()), |p| RouteLabel(p.0.clone()));
        let labels = HttpLabels { method: method_label(&method), route, status: resp.status().as_u16() };
        self.metrics.observe(&labels, started.elapsed());
        resp.headers_mut().insert(RequestId::HEADER, id.header_value().clone());
        Ok(resp)
    }
}
