//! RFC 9457 problem details: the one error shape of the whole API.
//!
//! Handlers return [`ApiError`] (usually through a module error enum's `From` impl, the one place
//! where a module's failures get a status and a [`ErrorCode`]). Operations declare which error
//! statuses they produce with [`Problems<S>`], a typed status set, so the OpenAPI spec lists them
//! and the SPA's generated client knows them. Errors produced below the handlers (routing, parsing,
//! body limits, panics) are turned into the same shape by [`crate::http`].

mod code;
mod status;

use std::{borrow::Cow, fmt};

pub use code::ErrorCode;
/// HTTP status codes, for the one place a module maps its errors to answers (its `error.rs`).
pub use poem::http::StatusCode;
use poem::{
    IntoResponse, Response,
    http::{HeaderName, HeaderValue, header},
};
/// A response header in the spec (markers with headers of their own).
pub use poem_openapi::registry::MetaHeader;
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaResponses, Registry},
    types::Type,
};
use serde::Serialize;
pub use status::{ProblemStatus, Problems, StatusSet, integer_header, markers, problem_response, string_header};

use crate::context::RequestId;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Object)]
pub struct FieldError {
    /// The field, as the client named it (`email`, `items[2].title`, `pageSize`).
    pub field: String,
    /// What is wrong with it, for a human.
    pub message: String,
}

impl FieldError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The RFC 9457 problem details body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Problem {
    /// A URI reference for the problem type; `about:blank` means the status says it all.
    #[serde(rename = "type")]
    #[oai(rename = "type")]
    pub type_: String,
    /// The HTTP status phrase (`Not Found`).
    pub title: String,
    /// The HTTP status code, repeated for convenience.
    pub status: u16,
    /// What happened in this case, for a human. Never contains internals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable machine-readable code.
    pub code: ErrorCode,
    /// The request id (also in the `X-Request-Id` header); quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Seconds to wait before retrying (429 and some 503 answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Field-level validation errors (`VALIDATION_FAILED` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// The quota reached, by its configuration key (`QUOTA_EXCEEDED` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

/// An error answer: status, code, a safe detail, and optional field errors and headers.
///
/// Build one with the constructors (`ApiError::not_found(..)`), or convert a module's error enum
/// into it. [`ApiError::internal`] logs the real cause and answers a bare 500. One pointer wide,
/// so every `Result<_, ApiError>` on a request path stays small.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Parts>);

#[derive(Debug, Clone)]
struct Parts {
    status: StatusCode,
    code: ErrorCode,
    detail: Option<Cow<'static, str>>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    quota: Option<&'static str>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with this status and code and no detail.
    pub fn new(status: StatusCode, code: ErrorCode) -> Self {
        Self(Box::new(Parts {
            status,
            code,
            detail: None,
            errors: Vec::new(),
            retry_after: None,
            quota: None,
            headers: Vec::new(),
        }))
    }

    /// Adds a human-readable detail. It is sent to the client: no internals.
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Adds a response header (e.g. rate-limit state).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// Sets `retryAfter` and the `Retry-After` header (seconds).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self.0.headers.push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        self
    }

    /// 400 `VALIDATION_FAILED` listing each invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("`{}` {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut err = Self::new(StatusCode::BAD_REQUEST, ErrorCode::VALIDATION_FAILED).with_detail(detail);
        err.0.errors = errors;
        err
    }

    /// 400 `MALFORMED_REQUEST`.
    pub fn malformed(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::MALFORMED_REQUEST).with_detail(detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`, as RFC 6750 asks.
    pub fn unauthenticated(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code)
            .with_detail(detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::FORBIDDEN).with_detail(detail)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NOT_FOUND).with_detail(detail)
    }

    /// 409 with the given code (`CONFLICT`, or a module's own).
    pub fn conflict(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code).with_detail(detail)
    }

    /// 409 `QUOTA_EXCEEDED`: the per-user quota configured under `key` is reached; `detail`
    /// says what it allows.
    pub fn quota_exceeded(key: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        let mut err = Self::new(StatusCode::CONFLICT, ErrorCode::QUOTA_EXCEEDED).with_detail(detail);
        err.0.quota = Some(key);
        err
    }

    /// 503 `DEPENDENCY_UNAVAILABLE`: `what` names the dependency in words a client may see
    /// ("the session store"), never an address.
    pub fn unavailable(what: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::DEPENDENCY_UNAVAILABLE)
            .with_detail(format!("{what} is temporarily unavailable; retry shortly"))
            .with_retry_after(1)
    }

    /// 500 `INTERNAL_ERROR`. The cause is logged with the request id and never sent.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::INTERNAL_ERROR)
            .with_detail("An unexpected error occurred; quote the requestId when reporting it")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The body this error renders, with the current request id.
    pub fn problem(&self) -> Problem {
        Problem {
            type_: "about:blank".into(),
            title: self.0.status.canonical_reason().unwrap_or("Error").into(),
            status: self.0.status.as_u16(),
            detail: self.0.detail.as_ref().map(|d| d.to_string()),
            code: self.0.code,
            request_id: RequestId::current().map(|id| id.as_str().to_owned()),
            retry_after: self.0.retry_after,
            errors: (!self.0.errors.is_empty()).then(|| self.0.errors.clone()),
            quota: self.0.quota.map(str::to_owned),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.0.status.as_u16(), self.0.code)?;
        if let Some(detail) = &self.0.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = Response::builder().status(self.0.status).content_type(PROBLEM_JSON).body(body);
        for (name, value) in self.0.headers {
            resp.headers_mut().append(name, value);
        }
        resp
    }
}

impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

impl ApiResponse for ApiError {
    /// A bare `ApiError` is declared as the `default` response: any status, problem+json.
    fn meta() -> MetaResponses {
        MetaResponses { responses: vec![problem_response(None, "An error (RFC 9457 problem details)", Vec::new())] }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_problem_json_with_the_request_id() {
        let id = RequestId::parse("req-42").expect("valid id");
        let resp = id.scope(async { ApiError::not_found("no such item").into_response() }).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body: serde_json::Value =
            serde_json::from_slice(&resp.into_body().into_bytes().await.expect("body")).expect("json");
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Not Found");
        assert_eq!(body["status"], 404);
        assert_eq!(body["code"], "NOT_FOUND");
        assert_eq!(body["requestId"], "req-42");
        assert!(body.get("errors").is_none());
    }

    #[test]
    fn unauthenticated_carries_the_bearer_challenge() {
        let resp = ApiError::unauthenticated(ErrorCode::UNAUTHENTICATED, "missing token").into_response();
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn validation_lists_fields_and_retry_after_sets_the_header() {
        let err = ApiError::validation(vec![FieldError::new("pageSize", "must be at most 100")]);
        assert_eq!(err.problem().errors.expect("errors")[0].field, "pageSize");
        let resp =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RATE_LIMITED).with_retry_after(17).into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "17");
    }

    #[test]
    fn status_sets_declare_each_status() {
        let meta = <Problems<(markers::NotFound, markers::Unauthorized)> as ApiResponse>::meta();
        let statuses: Vec<_> = meta.responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![Some(404), Some(401)]);
        assert_eq!(meta.responses[1].headers[0].name, "WWW-Authenticate");
    }

    #[test]
    fn markers_of_one_status_become_one_response_listing_every_code() {
        crate::problem_status! {
            Taken = 409, [ErrorCode::new("TAKEN", "taken")], "the name is taken";
        }
        let meta = <Problems<(markers::Conflict, Taken, markers::NotFound)> as ApiResponse>::meta();
        let statuses: Vec<_> = meta.responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![Some(409), Some(404)]);
        assert_eq!(
            meta.responses[0].description,
            "`CONFLICT`: the request conflicts with the resource's current state; `TAKEN`: the name is taken"
        );
    }
}
