//! RFC 9457 problem details: the one error shape of the whole API.
//!
//! Handlers return [`ApiError`] (usually through a module error enum's `From` impl, the one place
//! where a module's failures get a status and a [`ErrorCode`]). Operations declare which error
//! statuses they produce with [`Problems<S>`], a typed status set, so the OpenAPI spec lists them
//! and the SPA's generated client knows them. Errors produced below the handlers (routing, parsing,
//! body limits, panics) are turned into the same shape by [`crate::http`].

use std::{borrow::Cow, fmt, marker::PhantomData};

use poem::{
    IntoResponse, Response,
    http::{HeaderName, HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Enum, Object,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
};
use serde::Serialize;

use crate::context::RequestId;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A stable, machine-readable error code the SPA can switch on. New codes may be added;
/// existing ones never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A field failed validation; `errors` lists each one.
    ValidationFailed,
    /// The request could not be read: bad JSON, a path or query value of the wrong type.
    MalformedRequest,
    /// No valid bearer token.
    Unauthenticated,
    /// Login with an unknown email or a wrong password (deliberately indistinguishable).
    InvalidCredentials,
    /// The access token has expired; refresh it.
    TokenExpired,
    /// The session behind the token was revoked or has expired.
    SessionRevoked,
    /// An already-rotated refresh token was presented; the whole session is revoked.
    RefreshTokenReused,
    /// Authenticated, but lacking the required role.
    Forbidden,
    /// No such route, or a resource that does not exist or belongs to someone else.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The email is already registered.
    EmailTaken,
    /// The lock token is not the current holder's.
    LockNotHeld,
    /// The request conflicts with the resource's current state.
    Conflict,
    /// The body exceeds the configured limit.
    PayloadTooLarge,
    /// The `Content-Type` is not one this route accepts.
    UnsupportedMediaType,
    /// The resource is locked by another holder.
    Locked,
    /// A rate-limit policy was exceeded; see `retryAfter`.
    RateLimited,
    /// A required dependency (Redis, the database) is unavailable; retry later.
    DependencyUnavailable,
    /// An unexpected error on the server; details are in the server's log under `requestId`.
    InternalError,
}

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
}

/// An error answer: status, code, a safe detail, and optional field errors and headers.
///
/// Build one with the constructors (`ApiError::not_found(..)`), or convert a module's error enum
/// into it. [`ApiError::internal`] logs the real cause and answers a bare 500.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    detail: Option<Cow<'static, str>>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with this status and code and no detail.
    pub fn new(status: StatusCode, code: ErrorCode) -> Self {
        Self { status, code, detail: None, errors: Vec::new(), retry_after: None, headers: Vec::new() }
    }

    /// Adds a human-readable detail. It is sent to the client: no internals.
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a response header (e.g. rate-limit state).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets `retryAfter` and the `Retry-After` header (seconds).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self.headers.push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        self
    }

    /// 400 `VALIDATION_FAILED` listing each invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("`{}` {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut err = Self::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed).with_detail(detail);
        err.errors = errors;
        err
    }

    /// 400 `MALFORMED_REQUEST`.
    pub fn malformed(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedRequest).with_detail(detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`, as RFC 6750 asks.
    pub fn unauthenticated(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code)
            .with_detail(detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden).with_detail(detail)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound).with_detail(detail)
    }

    /// 409 with the given code (`EMAIL_TAKEN`, `LOCK_NOT_HELD`, `CONFLICT`).
    pub fn conflict(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code).with_detail(detail)
    }

    /// 503 `DEPENDENCY_UNAVAILABLE`: `what` names the dependency in words a client may see
    /// ("the session store"), never an address.
    pub fn unavailable(what: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::DependencyUnavailable)
            .with_detail(format!("{what} is temporarily unavailable; retry shortly"))
    }

    /// 500 `INTERNAL_ERROR`. The cause is logged with the request id and never sent.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError)
            .with_detail("An unexpected error occurred; quote the requestId when reporting it")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The body this error renders, with the current request id.
    pub fn problem(&self) -> Problem {
        Problem {
            type_: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").into(),
            status: self.status.as_u16(),
            detail: self.detail.as_ref().map(|d| d.to_string()),
            code: self.code,
            request_id: RequestId::current().map(|id| id.as_str().to_owned()),
            retry_after: self.retry_after,
            errors: (!self.errors.is_empty()).then(|| self.errors.clone()),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.status.as_u16(), self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = Response::builder().status(self.status).content_type(PROBLEM_JSON).body(body);
        for (name, value) in self.headers {
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

/// One error status an operation may answer, for [`Problems`].
pub trait ProblemStatus: Send + Sync + 'static {
    /// The HTTP status.
    const STATUS: u16;
    /// The spec's description of when it happens.
    const DESCRIPTION: &'static str;
    /// Headers that come with it in the spec.
    fn headers() -> Vec<MetaHeader> {
        Vec::new()
    }
}

/// The statuses of a [`Problems`] set: a tuple of [`ProblemStatus`] markers.
pub trait StatusSet: Send + Sync + 'static {
    /// The spec entries, one per status.
    fn responses() -> Vec<MetaResponse>;
}

/// An error answer whose possible statuses are declared in the type, so the spec shows them:
/// `Result<Json<Item>, Problems<(NotFound, Locked)>>`. Any [`ApiError`] (and anything that
/// converts into one) converts into it with `?`.
pub struct Problems<S: StatusSet>(pub ApiError, PhantomData<S>);

impl<S: StatusSet> fmt::Debug for Problems<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<S: StatusSet, E: Into<ApiError>> From<E> for Problems<S> {
    fn from(err: E) -> Self {
        Problems(err.into(), PhantomData)
    }
}

impl<S: StatusSet> IntoResponse for Problems<S> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<S: StatusSet> From<Problems<S>> for poem::Error {
    fn from(err: Problems<S>) -> Self {
        err.0.into()
    }
}

impl<S: StatusSet> ApiResponse for Problems<S> {
    fn meta() -> MetaResponses {
        MetaResponses { responses: S::responses() }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// A problem+json response entry for the spec; `status: None` is the `default` entry.
pub fn problem_response(status: Option<u16>, description: &'static str, headers: Vec<MetaHeader>) -> MetaResponse {
    MetaResponse {
        description,
        status,
        status_range: None,
        content: vec![MetaMediaType { content_type: PROBLEM_JSON, schema: Problem::schema_ref() }],
        headers,
    }
}

macro_rules! problem_statuses {
    ($($(#[$doc:meta])* $name:ident = $status:literal, $desc:literal;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl ProblemStatus for $name {
                const STATUS: u16 = $status;
                const DESCRIPTION: &'static str = $desc;
            }
        )*
    };
}

/// Status markers for [`Problems`].
pub mod status {
    use super::*;

    problem_statuses! {
        /// 400.
        BadRequest = 400, "`VALIDATION_FAILED` (see `errors`) or `MALFORMED_REQUEST`";
        /// 403.
        Forbidden = 403, "`FORBIDDEN`: authenticated but lacking the required role";
        /// 404.
        NotFound = 404, "`NOT_FOUND`: no such resource, or it belongs to someone else";
        /// 409.
        Conflict = 409, "Conflicts with the current state (`EMAIL_TAKEN`, `LOCK_NOT_HELD`, `CONFLICT`)";
        /// 423.
        Locked = 423, "`LOCKED`: another holder has the lock";
        /// 503.
        Unavailable = 503, "`DEPENDENCY_UNAVAILABLE`: a required dependency is down; retry shortly";
    }

    /// 401, with `WWW-Authenticate: Bearer`.
    pub struct Unauthorized;
    impl ProblemStatus for Unauthorized {
        const STATUS: u16 = 401;
        const DESCRIPTION: &'static str = "Missing or invalid bearer token, or a revoked session (`UNAUTHENTICATED`, `TOKEN_EXPIRED`, `SESSION_REVOKED`, ...)";
        fn headers() -> Vec<MetaHeader> {
            vec![string_header("WWW-Authenticate", "`Bearer`, as RFC 6750 asks")]
        }
    }
}

/// A spec entry for a string response header.
pub fn string_header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

macro_rules! impl_status_set {
    ($($t:ident),*) => {
        impl<$($t: ProblemStatus),*> StatusSet for ($($t,)*) {
            fn responses() -> Vec<MetaResponse> {
                vec![$(problem_response(Some($t::STATUS), $t::DESCRIPTION, $t::headers())),*]
            }
        }
    };
}

impl_status_set!(A);
impl_status_set!(A, B);
impl_status_set!(A, B, C);
impl_status_set!(A, B, C, D);
impl_status_set!(A, B, C, D, E);
impl_status_set!(A, B, C, D, E, F);

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
        let resp = ApiError::unauthenticated(ErrorCode::Unauthenticated, "missing token").into_response();
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn validation_lists_fields_and_retry_after_sets_the_header() {
        let err = ApiError::validation(vec![FieldError::new("pageSize", "must be at most 100")]);
        assert_eq!(err.problem().errors.expect("errors")[0].field, "pageSize");
        let resp =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).with_retry_after(17).into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "17");
    }

    #[test]
    fn status_sets_declare_each_status() {
        let meta = <Problems<(status::NotFound, status::Unauthorized)> as ApiResponse>::meta();
        let statuses: Vec<_> = meta.responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![Some(404), Some(401)]);
        assert_eq!(meta.responses[1].headers[0].name, "WWW-Authenticate");
    }
}
