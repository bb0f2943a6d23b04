//! An operation's method and path template (`POST /api/v1/items/{id}/lock`), matched against a
//! request before routing (by the throttle guard and the body contracts).

use poem::http::Method;

/// One segment of a path template.
#[derive(Debug)]
enum Segment {
    Literal(Box<str>),
    /// `{name}`: any one non-empty segment.
    Param,
}

/// A method and path template from the spec.
#[derive(Debug)]
pub struct OperationRoute {
    method: Method,
    segments: Box<[Segment]>,
}

impl OperationRoute {
    /// The route of `method` (as the spec writes it: `post`) and `path` (`/items/{id}`).
    pub fn new(method: Method, path: &str) -> Self {
        let segments = path
            .trim_matches('/')
            .split('/')
            .map(|s| if s.starts_with('{') && s.ends_with('}') { Segment::Param } else { Segment::Literal(s.into()) })
            .collect();
        Self { method, segments }
    }

    /// Whether a request with `method` and `path` reaches this operation.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method != method {
            return false;
        }
        let path = path.strip_prefix('/').unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut parts = path.split('/');
        self.segments.iter().all(|segment| match (segment, parts.next()) {
            (Segment::Literal(literal), Some(part)) => **literal == *part,
            (Segment::Param, Some(part)) => !part.is_empty(),
            (_, None) => false,
        }) && parts.next().is_none()
    }
}

/// Every operation of an OpenAPI document: its method, path and the operation object.
pub fn operations(spec: &serde_json::Value) -> impl Iterator<Item = (Method, &str, &serde_json::Value)> {
    spec.get("paths").and_then(serde_json::Value::as_object).into_iter().flatten().flat_map(|(path, item)| {
        item.as_object().into_iter().flatten().filter_map(move |(method, op)| {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).ok()?;
            Some((method, path.as_str(), op))
        })
    })
}
