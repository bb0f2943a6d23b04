//! CORS for an SPA on another origin, answering as the browser needs it: the configured origins
//! get CORS answers with credentials; a request from any other origin (the server's own Swagger
//! UI, say) or without `Origin` is served as it is, without CORS headers, and never refused (the
//! browser enforces the rest); every answer varies on `Origin`, so no cache hands one origin's
//! answer to another.

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
};

use super::CorsHeaders;

/// The CORS layer.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<HeaderValue>,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
    allow_methods: HeaderValue,
}

impl Cors {
    /// CORS for `origins`, letting them send and read `headers`.
    pub fn new(origins: &[String], headers: &CorsHeaders) -> Self {
        let join = |list: &[String]| HeaderValue::from_str(&list.join(", ")).unwrap_or(HeaderValue::from_static(""));
        Self {
            origins: origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect(),
            allow_headers: join(&headers.request),
            expose_headers: join(&headers.exposed),
            allow_methods: HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE"),
        }
    }

    fn allowed<'a>(&self, req: &'a Request) -> Option<&'a HeaderValue> {
        req.headers().get(header::ORIGIN).filter(|origin| self.origins.iter().any(|o| o == *origin))
    }

    fn credentials(&self, headers: &mut HeaderMap, origin: HeaderValue) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

impl<E: Endpoint> Middleware<E> for Cors {
    type Output = CorsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        CorsEndpoint { inner: ep, cors: self.clone() }
    }
}

/// The endpoint made by [`Cors`].
pub struct CorsEndpoint<E> {
    inner: E,
    cors: Cors,
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let origin = self.cors.allowed(&req).cloned();
        let preflight =
            req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if let (Some(origin), true) = (&origin, preflight) {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            let headers = resp.headers_mut();
            self.cors.credentials(headers, origin.clone());
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, self.cors.allow_methods.clone());
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, self.cors.allow_headers.clone());
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            return Ok(resp);
        }
        let mut resp = self.inner.call(req).await.map(IntoResponse::into_response)?;
        let headers = resp.headers_mut();
        if let Some(origin) = origin {
            self.cors.credentials(headers, origin);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, self.cors.expose_headers.clone());
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        Ok(resp)
    }
}
