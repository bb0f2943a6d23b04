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

/// A path template from the spec (`/items/{id}`).
#[derive(Debug)]
struct PathTemplate(Box<[Segment]>);

impl PathTemplate {
    fn new(path: &str) -> Self {
        Self(
            path.trim_matches('/')
                .split('/')
                .map(
                    |s| {
                        if s.starts_with('{') && s.ends_with('}') { Segment::Param } else { Segment::Literal(s.into()) }
                    },
                )
                .collect(),
        )
    }

    fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut parts = path.split('/');
        self.0.iter().all(|segment| match (segment, parts.next()) {
            (Segment::Literal(literal), Some(part)) => **literal == *part,
            (Segment::Param, Some(part)) => !part.is_empty(),
            (_, None) => false,
        }) && parts.next().is_none()
    }
}

/// A method and path template from the spec.
#[derive(Debug)]
pub struct OperationRoute {
    method: Method,
    path: PathTemplate,
}

impl OperationRoute {
    /// The route of `method` and `path` (`/items/{id}`).
    pub fn new(method: Method, path: &str) -> Self {
        Self { method, path: PathTemplate::new(path) }
    }

    /// Whether a request with `method` and `path` reaches this operation.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.method == method && self.path.matches(path)
    }
}

/// The methods each path of the spec answers, for `Allow` (on 405 answers and `OPTIONS`).
#[derive(Debug, Default)]
pub struct AllowTable {
    entries: Vec<(PathTemplate, String)>,
}

impl AllowTable {
    /// The paths of `spec` and their methods (`HEAD` with `GET`, and `OPTIONS`).
    pub fn new(spec: &serde_json::Value) -> Self {
        let mut paths: Vec<(&str, Vec<Method>)> = Vec::new();
        for (method, path, _) in operations(spec) {
            match paths.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => methods.push(method),
                None => paths.push((path, vec![method])),
            }
        }
        let entries = paths
            .into_iter()
            .map(|(path, mut methods)| {
                if methods.contains(&Method::GET) {
                    methods.push(Method::HEAD);
                }
                methods.push(Method::OPTIONS);
                let order = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
                methods.sort_by_key(|m| order.iter().position(|o| o == m).unwrap_or(order.len()));
                methods.dedup();
                let allow = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
                (PathTemplate::new(path), allow)
            })
            .collect();
        Self { entries }
    }

    /// The `Allow` value of `path`, if the spec has the path.
    pub fn allowed(&self, path: &str) -> Option<&str> {
        self.entries.iter().find(|(template, _)| template.matches(path)).map(|(_, allow)| allow.as_str())
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
