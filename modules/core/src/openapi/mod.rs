//! The spec finalizer: declares, on every operation, the error answers the framework itself
//! produces, so the SPA's generated client knows them.
//!
//! poem-openapi documents what a handler's return type declares. Errors produced below the
//! handlers (parameter and JSON parsing, body limit, content type, the bearer guard) come from
//! middleware and extractors, which the derive cannot see. This pass adds them from what the
//! operation itself shows:
//! - every operation: a `default` problem+json response (unknown route 404, 405, 500, ...);
//! - parameters or a body: 400 (`VALIDATION_FAILED` / `MALFORMED_REQUEST`);
//! - path parameters: 404;
//! - a body: 413 and 415;
//! - a `security` requirement: 401 with `WWW-Authenticate`;
//! - an `/api/` operation: 429 and the rate-limit headers, and a line naming its policies (from
//!   the rules operations declare), unless it skips them all.
//!
//! Entries the operation already declares are kept as they are.

mod contract;
mod schema;
mod serde_body;

pub use contract::BodyContracts;
use poem_openapi::{registry::Registry, types::Type};
pub use serde_body::{JsonBodies, SerdeJson, WrittenJson, same_forms};
use serde_json::{Map, Value, json};

use crate::{
    ErrorCode,
    problem::{PROBLEM_JSON, Problem},
    throttle::ThrottleRule,
};

/// The JSON schema of `T` as the spec writes it (a `$ref` for named types), with the component
/// schemas it needs: for spec details a module only learns at build time (a job type's params).
pub fn schema_of<T: Type>() -> (Value, Map<String, Value>) {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = serde_json::to_value(T::schema_ref()).unwrap_or_default();
    let components = registry
        .schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
        .collect();
    (schema, components)
}

/// What the finalizer needs to know about the app beyond its operations.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppFacts<'a> {
    /// The rate-limit rules the operations declare.
    pub rules: &'a [&'static ThrottleRule],
    /// Every error code the app can answer (the `ErrorCode` enum).
    pub codes: &'a [ErrorCode],
    /// The codes the bearer guard answers 401 with, beyond `UNAUTHENTICATED` (the installed
    /// session verifier's).
    pub bearer_codes: &'a [ErrorCode],
}

/// Finalizes a spec composed from the controllers' documents.
pub fn finalize(doc: &mut Value, facts: &AppFacts<'_>) -> Result<(), serde_json::Error> {
    add_problem_schemas(doc)?;
    plain_media_types(doc);
    whole_number_bounds(doc);
    set_error_codes(doc, facts.codes);
    let bearer: Vec<(String, String)> = [ErrorCode::UNAUTHENTICATED]
        .iter()
        .chain(facts.bearer_codes)
        .map(|c| (format!("`{c}`"), format!("`{c}`: {}", c.description().trim_end_matches('.'))))
        .collect();
    let rules = facts.rules;
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch" | "head" | "options") {
                    decorate(op, &bearer);
                    if path.starts_with("/api/") {
                        let id = op.get("operationId").and_then(Value::as_str).unwrap_or_default();
                        let rule = rules.iter().find(|r| r.operation == id);
                        if describe_rate_limits(op, rule.copied()) {
                            declare_rate_limits(op);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Media-type keys without parameters (`application/json`, not `application/json;
/// charset=utf-8`): generated clients look their helpers up by the plain key.
fn plain_media_types(doc: &mut Value) {
    fn strip(content: &mut Value) {
        if let Some(map) = content.as_object_mut() {
            let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            for (key, value) in entries {
                let plain = key.split(';').next().unwrap_or(&key).trim().to_owned();
                map.entry(plain).or_insert(value);
            }
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
        if let Some(content) = op.pointer_mut("/requestBody/content") {
            strip(content);
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for response in responses.values_mut() {
                if let Some(content) = response.get_mut("content") {
                    strip(content);
                }
            }
        }
    }
}

/// `minimum: 1.0` as `minimum: 1` where the bound is a whole number (poem-openapi writes floats).
fn whole_number_bounds(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if matches!(key.as_str(), "minimum" | "maximum")
                    && let Some(f) = inner.as_f64()
                    && f.fract() == 0.0
                    && f.abs() < 9.0e15
                {
                    *inner = Value::from(f as i64);
                } else {
                    whole_number_bounds(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_number_bounds),
        _ => {}
    }
}

/// The `ErrorCode` schema lists every code the app's modules declare.
fn set_error_codes(doc: &mut Value, codes: &[ErrorCode]) {
    if codes.is_empty() {
        return;
    }
    if let Some(schema) = doc.pointer_mut("/components/schemas/ErrorCode").and_then(Value::as_object_mut) {
        schema.insert("enum".into(), codes.iter().map(|c| Value::from(c.as_str())).collect());
        let mut description = String::from(
            "A stable, machine-readable error code the SPA can switch on. New codes may be added; existing ones \
             never change meaning.\n",
        );
        for code in codes {
            description.push_str(&format!("\n- `{code}`: {}", code.description()));
        }
        schema.insert("description".into(), Value::String(description));
    }
}

fn add_problem_schemas(doc: &mut Value) -> Result<(), serde_json::Error> {
    let mut registry = Registry::new();
    <Problem as Type>::register(&mut registry);
    let schemas = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .map(|c| c.entry("schemas").or_insert_with(|| json!({})));
    if let Some(Value::Object(schemas)) = schemas {
        for (name, schema) in registry.schemas {
            if !schemas.contains_key(&name) {
                schemas.insert(name, serde_json::to_value(schema)?);
            }
        }
    }
    Ok(())
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

/// `bearer`: each code the bearer guard answers 401 with, and its line in the description.
fn decorate(op: &mut Value, bearer: &[(String, String)]) {
    let params = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    let has_params = !params.is_empty();
    let has_path_params = params.iter().any(|p| p.get("in").and_then(Value::as_str) == Some("path"));
    let has_body = op.get("requestBody").is_some();
    let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
    if !secured && let Some(op) = op.as_object_mut() {
        // Public: said explicitly, so linters and generated clients do not assume a default.
        op.insert("security".into(), json!([]));
    }
    let Some(responses) = op.as_object_mut().map(|o| o.entry("responses").or_insert_with(|| json!({}))) else {
        return;
    };
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    let mut add = |status: &str, value: Value| {
        responses.entry(status.to_owned()).or_insert(value);
    };
    if has_params || has_body {
        add(
            "400",
            problem("`VALIDATION_FAILED` (see `errors`) or `MALFORMED_REQUEST`: a parameter or the body is invalid"),
        );
    }
    if secured {
        let lines: Vec<&str> = bearer.iter().map(|(_, line)| line.as_str()).collect();
        let mut answer = problem(&lines.join("; "));
        answer["headers"] = json!({
            "WWW-Authenticate": { "description": "`Bearer`, as RFC 6750 asks", "required": true, "schema": { "type": "string" } }
        });
        add("401", answer);
    }
    if has_path_params {
        add("404", problem("`NOT_FOUND`: no such resource, or it belongs to someone else"));
    }
    if has_body {
        add("413", problem("`PAYLOAD_TOO_LARGE`: the body exceeds the configured limit (1 MiB by default)"));
        add("415", problem("`UNSUPPORTED_MEDIA_TYPE`: send `Content-Type: application/json`"));
    }
    add(
        "default",
        problem(
            "Any other error, as RFC 9457 problem details (`NOT_FOUND`, `METHOD_NOT_ALLOWED`, `INTERNAL_ERROR`, ...)",
        ),
    );
    // An operation that declares its own 401 also answers the guard's codes.
    if let Some(description) = responses.get_mut("401").and_then(|r| r.get_mut("description")).filter(|_| secured) {
        let mut text = description.as_str().unwrap_or_default().to_owned();
        for (code, line) in bearer {
            if !text.contains(code.as_str()) {
                text.push_str("; ");
                text.push_str(line);
            }
        }
        *description = Value::String(text);
    }
    sort_statuses(responses);
}

/// The rate-limit headers every `/api/` answer carries (see the throttle guard).
fn rate_limit_headers() -> Map<String, Value> {
    let header = |description: &str, ty: &str| json!({ "description": description, "schema": { "type": ty } });
    let mut headers = Map::new();
    headers.insert("X-RateLimit-Limit".into(), header("Requests allowed per window by the tightest policy", "integer"));
    headers.insert("X-RateLimit-Remaining".into(), header("Requests left under the tightest policy", "integer"));
    headers.insert(
        "X-RateLimit-Reset".into(),
        header("When the tightest policy's allowance is whole again (Unix epoch seconds)", "integer"),
    );
    headers.insert(
        "RateLimit-Policy".into(),
        header("Every evaluated policy, IETF structured form: `\"api\";q=100;w=60`", "string"),
    );
    headers.insert(
        "RateLimit".into(),
        header("Every evaluated policy's state, IETF structured form: `\"api\";r=42;t=17`", "string"),
    );
    headers
}

/// Adds a line naming the policies an `/api/` operation passes to its description; whether
/// it passes any.
fn describe_rate_limits(op: &mut Value, rule: Option<&ThrottleRule>) -> bool {
    let (skip_default, named) = rule.map_or((false, &[][..]), |r| (r.skip_default, r.policies));
    let named: Vec<String> = named.iter().map(|p| format!("`{p}`")).collect();
    let line = match (skip_default, named.is_empty()) {
        (true, true) => "**Rate limits:** none (this operation skips the default policy).".to_owned(),
        (true, false) => format!("**Rate limits:** {} (not the default policy).", named.join(", ")),
        (false, true) => "**Rate limits:** the default policy.".to_owned(),
        (false, false) => format!("**Rate limits:** the default policy, {}.", named.join(", ")),
    };
    let line = match rule.and_then(|r| r.failures) {
        Some(policy) => format!(
            "{line} Failed attempts count against `{policy}` by client address; once it is spent, \
             failures answer 429 (a valid credential is never refused by it)."
        ),
        None => line,
    };
    if let Some(op) = op.as_object_mut() {
        let description = match op.get("description").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => format!("{text}\n\n{line}"),
            _ => line,
        };
        op.insert("description".into(), Value::String(description));
    }
    !(skip_default && named.is_empty())
}

/// Declares the 429 answer and the rate-limit headers of a rate-limited (`/api/`) operation.
fn declare_rate_limits(op: &mut Value) {
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut limited = problem("`RATE_LIMITED`: a rate-limit policy was exceeded; retry after `Retry-After` seconds");
    let mut headers = rate_limit_headers();
    headers.insert(
        "Retry-After".into(),
        json!({ "description": "Seconds to wait before retrying", "required": true, "schema": { "type": "integer" } }),
    );
    limited["headers"] = Value::Object(headers);
    responses.entry("429").or_insert(limited);
    for (status, response) in responses.iter_mut() {
        if status == "429" {
            continue;
        }
        if let Some(response) = response.as_object_mut() {
            let headers = response.entry("headers").or_insert_with(|| json!({}));
            if let Some(headers) = headers.as_object_mut() {
                for (name, value) in rate_limit_headers() {
                    headers.entry(name).or_insert(value);
                }
            }
        }
    }
    sort_statuses(responses);
}

/// Keeps responses in status order with `default` last, so the committed spec diffs cleanly.
fn sort_statuses(responses: &mut Map<String, Value>) {
    let mut entries: Vec<_> = std::mem::take(responses).into_iter().collect();
    entries.sort_by_key(|(status, _)| status.parse::<u16>().unwrap_or(u16::MAX));
    responses.extend(entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_framework_errors_from_the_operation_shape() {
        let spec = json!({
            "openapi": "3.0.0",
            "paths": {
                "/items/{id}": {
                    "patch": {
                        "parameters": [{ "name": "id", "in": "path" }],
                        "requestBody": {},
                        "security": [{ "bearer": [] }],
                        "responses": { "200": { "description": "ok" }, "404": { "description": "own" } }
                    }
                },
                "/health/live": { "get": { "responses": { "200": { "description": "ok" } } } }
            }
        });
        let mut out = spec;
        finalize(&mut out, &AppFacts::default()).expect("valid");
        let patch = &out["paths"]["/items/{id}"]["patch"]["responses"];
        let statuses: Vec<_> = patch.as_object().expect("object").keys().cloned().collect();
        assert_eq!(statuses, ["200", "400", "401", "404", "413", "415", "default"]);
        assert_eq!(patch["404"]["description"], "own", "declared entries are kept");
        assert!(patch["401"]["headers"]["WWW-Authenticate"].is_object());
        assert!(patch.get("429").is_none(), "only /api/ routes are rate-limited");
        let live = &out["paths"]["/health/live"]["get"]["responses"];
        assert_eq!(live.as_object().expect("object").keys().collect::<Vec<_>>(), ["200", "default"]);
        assert!(out["components"]["schemas"]["Problem"].is_object());
    }

    #[test]
    fn api_operations_declare_429_and_the_rate_limit_headers() {
        let spec = json!({
            "openapi": "3.0.0",
            "paths": { "/api/v1/things": { "get": { "responses": { "200": { "description": "ok" } } } } }
        });
        let mut out = spec;
        finalize(&mut out, &AppFacts::default()).expect("valid");
        let responses = &out["paths"]["/api/v1/things"]["get"]["responses"];
        assert!(responses["429"]["headers"]["Retry-After"].is_object());
        assert!(responses["429"]["headers"]["RateLimit-Policy"].is_object());
        for header in ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit"] {
            assert!(responses["200"]["headers"][header].is_object(), "{header} on 200");
        }
        assert_eq!(out["paths"]["/api/v1/things"]["get"]["description"], "**Rate limits:** the default policy.");
    }

    #[test]
    fn declared_rules_are_documented_and_a_skipped_operation_is_not_limited() {
        static NAMED: ThrottleRule = ThrottleRule::new("named", &["jobs"]);
        static SKIPPED: ThrottleRule = ThrottleRule::skip("skipped");
        let ok = json!({ "200": { "description": "ok" } });
        let spec = json!({
            "openapi": "3.0.0",
            "paths": {
                "/api/v1/a": { "post": { "operationId": "named", "description": "Does a.", "responses": ok } },
                "/api/v1/b": { "post": { "operationId": "skipped", "responses": ok } }
            }
        });
        let mut out = spec;
        finalize(&mut out, &AppFacts { rules: &[&NAMED, &SKIPPED], ..AppFacts::default() }).expect("valid");
        let named = &out["paths"]["/api/v1/a"]["post"];
        assert_eq!(named["description"], "Does a.\n\n**Rate limits:** the default policy, `jobs`.");
        assert!(named["responses"]["429"].is_object());
        let skipped = &out["paths"]["/api/v1/b"]["post"];
        assert!(skipped["responses"].get("429").is_none(), "{skipped}");
        assert!(skipped["responses"]["200"].get("headers").is_none(), "{skipped}");
        assert!(skipped["description"].as_str().unwrap().contains("none"), "{skipped}");
    }
}
