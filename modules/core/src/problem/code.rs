//! Error codes: the framework's own, and the way modules declare theirs.

use std::{borrow::Cow, fmt};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde::Serialize;

/// A stable, machine-readable error code the SPA can switch on. New codes may be added;
/// existing ones never change meaning.
///
/// The framework's own codes are the constants here. A module declares its own where its errors
/// live (`pub const NOTES_FULL: ErrorCode = ErrorCode::new("NOTES_FULL", "..")` in its
/// `error.rs`) and lists them in its module declaration, so the spec's `ErrorCode` enum names
/// every code the app can answer.
#[derive(Debug, Clone, Copy, Eq)]
pub struct ErrorCode {
    name: &'static str,
    description: &'static str,
}

impl PartialEq for ErrorCode {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl std::hash::Hash for ErrorCode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ErrorCode {
    /// A code: `SCREAMING_SNAKE_CASE`, with what it means for a client.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        Self { name, description }
    }

    /// The code as sent.
    pub fn as_str(&self) -> &'static str {
        self.name
    }

    /// What it means, for the spec.
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// A field failed validation; `errors` lists each one.
    pub const VALIDATION_FAILED: ErrorCode =
        ErrorCode::new("VALIDATION_FAILED", "A field failed validation; `errors` lists each one.");
    /// The request could not be read.
    pub const MALFORMED_REQUEST: ErrorCode = ErrorCode::new(
        "MALFORMED_REQUEST",
        "The request could not be read: bad JSON, a path or query value of the wrong type.",
    );
    /// No valid bearer token.
    pub const UNAUTHENTICATED: ErrorCode = ErrorCode::new("UNAUTHENTICATED", "No valid bearer token.");
    /// Authenticated, but lacking the required role.
    pub const FORBIDDEN: ErrorCode = ErrorCode::new("FORBIDDEN", "Authenticated, but lacking the required role.");
    /// No such route, or a resource that does not exist or belongs to someone else.
    pub const NOT_FOUND: ErrorCode =
        ErrorCode::new("NOT_FOUND", "No such route, or a resource that does not exist or belongs to someone else.");
    /// The route exists but not for this method.
    pub const METHOD_NOT_ALLOWED: ErrorCode =
        ErrorCode::new("METHOD_NOT_ALLOWED", "The route exists but not for this method.");
    /// The request conflicts with the resource's current state.
    pub const CONFLICT: ErrorCode =
        ErrorCode::new("CONFLICT", "The request conflicts with the resource's current state.");
    /// The body exceeds the configured limit.
    pub const PAYLOAD_TOO_LARGE: ErrorCode =
        ErrorCode::new("PAYLOAD_TOO_LARGE", "The body exceeds the configured limit.");
    /// The `Content-Type` is not one this route accepts.
    pub const UNSUPPORTED_MEDIA_TYPE: ErrorCode =
        ErrorCode::new("UNSUPPORTED_MEDIA_TYPE", "The `Content-Type` is not one this route accepts.");
    /// A rate-limit policy was exceeded.
    pub const RATE_LIMITED: ErrorCode =
        ErrorCode::new("RATE_LIMITED", "A rate-limit policy was exceeded; see `retryAfter`.");
    /// A per-user quota is reached.
    pub const QUOTA_EXCEEDED: ErrorCode = ErrorCode::new(
        "QUOTA_EXCEEDED",
        "A per-user quota is reached; `quota` names it (its configuration key) and `detail` its limit.",
    );
    /// A required dependency is unavailable.
    pub const DEPENDENCY_UNAVAILABLE: ErrorCode = ErrorCode::new(
        "DEPENDENCY_UNAVAILABLE",
        "A required dependency (Redis, the database) is unavailable; retry later.",
    );
    /// An unexpected error on the server.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode::new(
        "INTERNAL_ERROR",
        "An unexpected error on the server; details are in the server's log under `requestId`.",
    );

    /// The framework's own codes, which any app can answer.
    pub const FRAMEWORK: &'static [ErrorCode] = &[
        Self::VALIDATION_FAILED,
        Self::MALFORMED_REQUEST,
        Self::UNAUTHENTICATED,
        Self::FORBIDDEN,
        Self::NOT_FOUND,
        Self::METHOD_NOT_ALLOWED,
        Self::CONFLICT,
        Self::PAYLOAD_TOO_LARGE,
        Self::UNSUPPORTED_MEDIA_TYPE,
        Self::RATE_LIMITED,
        Self::QUOTA_EXCEEDED,
        Self::DEPENDENCY_UNAVAILABLE,
        Self::INTERNAL_ERROR,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}

/// In the spec, `code` refers to the `ErrorCode` schema: a string enum the spec finalizer fills
/// with every code the app's modules declare.
impl Type for ErrorCode {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "ErrorCode".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(Self::name().into_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(Self::name().into_owned(), |_| MetaSchema {
            description: Some(
                "A stable, machine-readable error code the SPA can switch on. New codes may be added; existing \
                 ones never change meaning.",
            ),
            enum_items: Self::FRAMEWORK.iter().map(|c| serde_json::Value::from(c.name)).collect(),
            ..MetaSchema::new("string")
        });
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ToJSON for ErrorCode {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(self.name.into())
    }
}

/// Problems are written, never read, by the server; a code read back (a test's client) that is
/// not a framework code is kept by name.
impl ParseFromJSON for ErrorCode {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        let name = value
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| ParseError::expected_type(value.clone().unwrap_or_default()))?;
        Self::FRAMEWORK
            .iter()
            .find(|c| c.name == name)
            .copied()
            .ok_or_else(|| ParseError::custom(format!("unknown error code {name}")))
    }
}
