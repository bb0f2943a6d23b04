//! Turns every error into RFC 9457 problem+json, including the ones poem and poem-openapi produce
//! themselves (unknown route, wrong method, unparsable parameters or JSON, wrong content type,
//! missing bearer token, panics).

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    error::{MethodNotAllowedError, NotFoundError},
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::error::{AuthorizationError, ContentTypeError, ParseParamError, ParsePathError};

use super::is_json;
use crate::{ApiError, ErrorCode, FieldError, route::AllowTable};

/// Middleware that normalizes errors into problem+json answers (and so never returns `Err`).
#[derive(Debug, Clone)]
pub struct Normalize(pub Arc<AllowTable>);

impl<E: Endpoint> Middleware<E> for Normalize {
    type Output = NormalizeEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        NormalizeEndpoint { inner: ep, allow: self.0.clone() }
    }
}

/// The endpoint made by [`Normalize`].
pub struct NormalizeEndpoint<E> {
    inner: E,
    allow: Arc<AllowTable>,
}

impl<E: Endpoint> Endpoint for NormalizeEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let method = req.method().clone();
        let uri = req.uri().clone();
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        Ok(normalize(result, &method, uri.path(), &self.allow))
    }
}

/// Maps an endpoint's result to a response whose errors are problem+json; a 405 says which
/// methods the path takes (`Allow`, from `allow`; `GET, HEAD` for the documents).
pub fn normalize(result: Result<Response>, method: &poem::http::Method, path: &str, allow: &AllowTable) -> Response {
    let mut resp = problem_json(result, method, path);
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED && !resp.headers().contains_key(header::ALLOW) {
        let methods = allow.allowed(path).unwrap_or("GET, HEAD");
        if let Ok(value) = HeaderValue::from_str(methods) {
            resp.headers_mut().insert(header::ALLOW, value);
        }
    }
    resp
}

fn problem_json(result: Result<Response>, method: &poem::http::Method, path: &str) -> Response {
    match result {
        Ok(resp) if resp.status().is_client_error() || resp.status().is_server_error() => {
            if is_json(&resp) {
                resp
            } else {
                let status = resp.status();
                rewrap(resp, from_status(status, None, method, path))
            }
        }
        Ok(resp) => resp,
        Err(err) => {
            if let Some(param) = err.downcast_ref::<ParseParamError>() {
                return ApiError::validation(vec![FieldError::new(param.name, param.reason.clone())]).into_response();
            }
            if let Some(path) = err.downcast_ref::<ParsePathError>() {
                // poem-openapi names path segments internally (`param0`), so the field is the path.
                return ApiError::validation(vec![FieldError::new(
                    "path",
                    format!("invalid path segment: {}", path.reason),
                )])
                .into_response();
            }
            let status = err.status();
            let detail =
                if err.is::<AuthorizationError>() || err.is::<NotFoundError>() || err.is::<MethodNotAllowedError>() {
                    None
                } else if err.is::<ContentTypeError>() {
                    Some(err.to_string())
                } else {
                    Some(truncate(err.to_string(), 300))
                };
            let resp = err.into_response();
            if is_json(&resp) {
                return resp;
            }
            rewrap(resp, from_status(status, detail, method, path))
        }
    }
}

/// Builds the problem for a bare status produced below the handlers.
fn from_status(status: StatusCode, detail: Option<String>, method: &poem::http::Method, path: &str) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found(format!("No route matches {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(status, ErrorCode::METHOD_NOT_ALLOWED).with_detail(format!("{path} does not accept {method}"))
        }
        StatusCode::UNAUTHORIZED => ApiError::unauthenticated(
            ErrorCode::UNAUTHENTICATED,
            "A valid bearer token is required in the Authorization header",
        ),
        StatusCode::FORBIDDEN => ApiError::forbidden(detail.unwrap_or_else(|| "Forbidden".into())),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(status, ErrorCode::PAYLOAD_TOO_LARGE)
            .with_detail(detail.unwrap_or_else(|| "The request body is too large".into())),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(status, ErrorCode::UNSUPPORTED_MEDIA_TYPE)
            .with_detail(detail.unwrap_or_else(|| "Unsupported Content-Type".into())),
        StatusCode::TOO_MANY_REQUESTS => ApiError::new(status, ErrorCode::RATE_LIMITED)
            .with_detail(detail.unwrap_or_else(|| "Too many requests; retry later".into())),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::unavailable("A dependency"),
        s if s.is_server_error() => ApiError::internal(detail.unwrap_or_else(|| s.to_string())),
        s => ApiError::new(s, ErrorCode::MALFORMED_REQUEST)
            .with_detail(detail.unwrap_or_else(|| s.canonical_reason().unwrap_or("Bad request").to_owned())),
    }
}

/// Replaces the body of a non-problem error response, keeping its other headers.
fn rewrap(original: Response, problem: ApiError) -> Response {
    let mut resp = problem.into_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !resp.headers().contains_key(name) {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    resp
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}
