//! Typed status sets: the error statuses an operation declares, so the spec lists each status
//! with the codes it may carry.

use std::{
    collections::HashSet,
    fmt,
    marker::PhantomData,
    sync::{Mutex, OnceLock},
};

use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
};

use super::{ApiError, ErrorCode, PROBLEM_JSON, Problem};

/// One error status an operation may answer, for [`Problems`]: the status, the codes it
/// carries and when. Declare one with [`problem_status!`](crate::problem_status).
pub trait ProblemStatus: Send + Sync + 'static {
    /// The HTTP status.
    const STATUS: u16;
    /// The codes an answer with this marker may carry.
    const CODES: &'static [ErrorCode];
    /// When it happens, for the spec (after the codes).
    const WHEN: &'static str;
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

/// Declares a status marker for [`Problems`]:
///
/// ```ignore
/// app_core::problem_status! {
///     /// 409 `NOTES_FULL`.
///     pub NotesFull = 409, [NOTES_FULL], "the notebook holds `notes.max_notes` notes already";
/// }
/// ```
///
/// Markers of the same status in one set become one response listing every code. `retry_after =
/// ".."` declares the `Retry-After` header the answer carries.
#[macro_export]
macro_rules! problem_status {
    ($($(#[$doc:meta])* $vis:vis $name:ident = $status:literal, [$($code:expr),+ $(,)?], $when:literal $(, retry_after = $retry:literal)?;)*) => {
        $(
            $(#[$doc])*
            $vis struct $name;
            impl $crate::problem::ProblemStatus for $name {
                const STATUS: u16 = $status;
                const CODES: &'static [$crate::ErrorCode] = &[$($code),+];
                const WHEN: &'static str = $when;
                fn headers() -> Vec<$crate::problem::MetaHeader> {
                    vec![$($crate::problem::integer_header("Retry-After", $retry))?]
                }
            }
        )*
    };
}

/// The framework's status markers for [`Problems`]; modules declare their own with
/// [`problem_status!`](crate::problem_status).
pub mod markers {
    use super::*;

    crate::problem_status! {
        /// 400.
        pub BadRequest = 400, [ErrorCode::VALIDATION_FAILED, ErrorCode::MALFORMED_REQUEST], "the request is invalid (see `errors`) or unreadable";
        /// 403.
        pub Forbidden = 403, [ErrorCode::FORBIDDEN], "authenticated but lacking the required role";
        /// 404.
        pub NotFound = 404, [ErrorCode::NOT_FOUND], "no such resource, or it belongs to someone else";
        /// 409.
        pub Conflict = 409, [ErrorCode::CONFLICT], "the request conflicts with the resource's current state";
        /// 409 `QUOTA_EXCEEDED`.
        pub QuotaExceeded = 409, [ErrorCode::QUOTA_EXCEEDED], "a per-user quota is reached (`quota` names it)";
        /// 503.
        pub Unavailable = 503, [ErrorCode::DEPENDENCY_UNAVAILABLE], "a required dependency is down; retry shortly",
            retry_after = "Seconds to wait before retrying";
    }

    /// 401 from the bearer guard, with `WWW-Authenticate: Bearer` (the spec finalizer adds the
    /// codes of the session verifier the app installs).
    pub struct Unauthorized;
    impl ProblemStatus for Unauthorized {
        const STATUS: u16 = 401;
        const CODES: &'static [ErrorCode] = &[ErrorCode::UNAUTHENTICATED];
        const WHEN: &'static str = "missing or invalid bearer token";
        fn headers() -> Vec<MetaHeader> {
            vec![string_header("WWW-Authenticate", "`Bearer`, as RFC 6750 asks")]
        }
    }
}

/// Spec descriptions made once per distinct text (a handful: one per status set in use) and
/// kept for the process's life, as poem-openapi's response metadata wants `&'static str`.
fn interned(text: String) -> &'static str {
    static TEXTS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = texts.get(text.as_str()) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    texts.insert(leaked);
    leaked
}

/// One response per status, listing the codes of every marker with that status.
fn merge(markers: Vec<(u16, &'static [ErrorCode], &'static str, Vec<MetaHeader>)>) -> Vec<MetaResponse> {
    let mut merged: Vec<(u16, Vec<String>, Vec<MetaHeader>)> = Vec::new();
    for (status, codes, when, marker_headers) in markers {
        let index = match merged.iter().position(|m| m.0 == status) {
            Some(index) => index,
            None => {
                merged.push((status, Vec::new(), Vec::new()));
                merged.len() - 1
            }
        };
        let (_, lines, headers) = &mut merged[index];
        let codes: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
        lines.push(format!("{}: {when}", codes.join(", ")));
        for header in marker_headers {
            if !headers.iter().any(|h| h.name == header.name) {
                headers.push(header);
            }
        }
    }
    merged
        .into_iter()
        .map(|(status, lines, headers)| problem_response(Some(status), interned(lines.join("; ")), headers))
        .collect()
}

/// A spec entry for an integer response header (`Retry-After` in seconds).
pub fn integer_header(name: &str, description: &str) -> MetaHeader {
    MetaHeader { schema: i64::schema_ref(), ..string_header(name, description) }
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
                merge(vec![$(($t::STATUS, $t::CODES, $t::WHEN, $t::headers())),*])
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
impl_status_set!(A, B, C, D, E, F, G);
impl_status_set!(A, B, C, D, E, F, G, H);
impl_status_set!(A, B, C, D, E, F, G, H, I);
impl_status_set!(A, B, C, D, E, F, G, H, I, J);
