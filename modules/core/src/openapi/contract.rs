//! The request-body contract, enforced from the spec: the schema an operation documents is the
//! one its requests are checked against, before its handler parses them. So every constraint
//! the spec shows (lengths, ranges, formats, enums, item counts, the job types' unions) is the
//! one the server enforces, from one declaration; a value of the wrong JSON type is refused (a
//! number is never taken for a string), `null` only where the schema is nullable; and every
//! invalid field is named at once, with no value echoed.

use jsonschema::{
    ValidationError, Validator,
    error::{TypeKind, ValidationErrorKind},
};
use poem::{
    Request,
    http::{HeaderValue, Method, header},
};
use serde_json::{Map, Value, json};

use super::schema::json_schema;
use crate::{ApiError, FieldError, route::OperationRoute};

/// One operation's body contract.
struct Contract {
    at: OperationRoute,
    /// Whether the operation takes a request without a body.
    optional: bool,
    /// Its JSON schema, when it takes JSON.
    validator: Option<Validator>,
}

/// The body contracts of every operation that takes a request body.
#[derive(Default)]
pub struct BodyContracts {
    contracts: Vec<Contract>,
}

impl std::fmt::Debug for BodyContracts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyContracts").field("operations", &self.contracts.len()).finish()
    }
}

impl BodyContracts {
    /// The contracts of `spec` (a finalized OpenAPI document).
    pub fn new(spec: &Value) -> Result<Self, String> {
        let components = spec.pointer("/components/schemas").cloned().unwrap_or_else(|| json!({}));
        let components: Map<String, Value> =
            components.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), json_schema(v))).collect();
        let mut contracts = Vec::new();
        for (method, path, op) in crate::route::operations(spec) {
            let Some(body) = op.get("requestBody") else { continue };
            let optional = !body.get("required").and_then(Value::as_bool).unwrap_or(false);
            let validator = match body.pointer("/content/application~1json/schema") {
                Some(schema) => {
                    let mut root = json_schema(schema);
                    if let Some(root) = root.as_object_mut() {
                        root.insert("components".into(), json!({ "schemas": components }));
                    }
                    let validator = jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft7)
                        .should_validate_formats(true)
                        .build(&root)
                        .map_err(|e| format!("{method} {path}: its body schema does not compile: {e}"))?;
                    Some(validator)
                }
                None => None,
            };
            contracts.push(Contract { at: OperationRoute::new(method, path), optional, validator });
        }
        Ok(Self { contracts })
    }

    /// Checks the body of `req` against its operation's contract (leaving it in place for the
    /// handler). A request without a body and without `Content-Type` to an operation whose body
    /// is optional reads as no body (what `fetch(url, {method: "POST"})` sends).
    pub async fn check(&self, req: &mut Request) -> Result<(), poem::Error> {
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let Some(contract) = self.contracts.iter().find(|c| c.at.matches(req.method(), req.uri().path())) else {
            return Ok(());
        };
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = req.take_body().into_bytes().await?;
        let json = match content_type.as_deref() {
            None if bytes.is_empty() && contract.optional => {
                req.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                req.set_body(bytes);
                return Ok(());
            }
            Some(ct) => is_json(ct),
            None => false,
        };
        if !json {
            // Not ours to judge: the operation answers 415 for a content type it does not take.
            req.set_body(bytes);
            return Ok(());
        }
        if let Some(validator) = &contract.validator {
            let value: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).map_err(|e| ApiError::malformed(format!("The body is not JSON: {e}")))?
            };
            let errors: Vec<FieldError> = validator.iter_errors(&value).flat_map(describe).collect();
            if !errors.is_empty() {
                return Err(ApiError::validation(dedup(errors)).into());
            }
        }
        req.set_body(bytes);
        Ok(())
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body's field at a JSON pointer, as the client names it (`items[2].title`; the whole body
/// is `body`).
fn field(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    if out.is_empty() { "body".into() } else { out }
}

fn join(field: &str, name: &str) -> String {
    if field == "body" { name.to_owned() } else { format!("{field}.{name}") }
}

/// A schema violation as field errors, in words that never repeat the value.
fn describe(error: ValidationError<'_>) -> Vec<FieldError> {
    let at = field(error.instance_path().as_str());
    let one = |message: String| vec![FieldError::new(at.clone(), message)];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            vec![FieldError::new(join(&at, property.as_str().unwrap_or_default()), "is required")]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            unexpected.iter().map(|name| FieldError::new(join(&at, name), "is not a field of this body")).collect()
        }
        ValidationErrorKind::Type { kind } => {
            let names: Vec<&str> = match kind {
                TypeKind::Single(one) => vec![one.as_str()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
            };
            one(format!("must be {}", type_words(&names)))
        }
        ValidationErrorKind::MinLength { limit } => one(format!("must be at least {limit} characters")),
        ValidationErrorKind::MaxLength { limit } => one(format!("must be at most {limit} characters")),
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            one(format!("must be at least {limit}"))
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            one(format!("must be at most {limit}"))
        }
        ValidationErrorKind::MinItems { limit } => one(format!("must have at least {limit} entries")),
        ValidationErrorKind::MaxItems { limit } => one(format!("must have at most {limit} entries")),
        ValidationErrorKind::UniqueItems => one("must not repeat an entry".into()),
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| format!("`{}`", o.as_str().map_or(o.to_string(), str::to_owned)))
                .collect();
            one(format!("must be one of {}", options.join(", ")))
        }
        ValidationErrorKind::Constant { expected_value } => one(format!("must be `{}`", expected_value)),
        ValidationErrorKind::Format { format } => one(match format.as_str() {
            "email" => "must be a valid email address".into(),
            "uuid" => "must be a UUID".into(),
            "date-time" => "must be an RFC 3339 date-time".into(),
            other => format!("must be a valid {other}"),
        }),
        ValidationErrorKind::Pattern { .. } => one("does not have the expected form".into()),
        _ => one("is not valid here".into()),
    }
}

/// `string` -> "a string", `integer` -> "an integer", several -> "an array or null".
fn type_words(names: &[&str]) -> String {
    let mut names = names.to_vec();
    // "an array or null" reads better than "null or an array".
    names.sort_by_key(|n| *n == "null");
    let words: Vec<&str> = names
        .iter()
        .map(|name| match *name {
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "a boolean",
            "object" => "an object",
            "array" => "an array",
            "null" => "null",
            _ => "of another type",
        })
        .collect();
    words.join(" or ")
}

/// One error per field and message, in the order found.
fn dedup(errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut seen = Vec::new();
    for error in errors {
        if !seen.contains(&error) {
            seen.push(error);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "paths": { "/api/items/{id}": {
                "patch": {
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Patch" } } } }
                },
                "post": {
                    "requestBody": { "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Patch" } } } }
                }
            } },
            "components": { "schemas": { "Patch": {
                "type": "object",
                "required": ["title"],
                "properties": {
                    "title": { "type": "string", "minLength": 1, "maxLength": 5 },
                    "note": { "type": "string", "nullable": true },
                    "email": { "type": "string", "format": "email" },
                    "tags": { "type": "array", "maxItems": 2, "items": { "type": "string", "maxLength": 3 } }
                }
            } } }
        })
    }

    async fn check(method: Method, body: Option<&'static str>) -> Result<(), Value> {
        let contracts = BodyContracts::new(&spec()).expect("compiles");
        let mut builder = Request::builder().method(method).uri(poem::http::Uri::from_static("/api/items/7"));
        if body.is_some() {
            builder = builder.content_type("application/json");
        }
        let mut req = builder.body(body.unwrap_or_default());
        match contracts.check(&mut req).await {
            Ok(()) => Ok(()),
            Err(err) => {
                let resp = err.into_response();
                Err(serde_json::from_slice(&resp.into_body().into_bytes().await.expect("body")).expect("json"))
            }
        }
    }

    #[tokio::test]
    async fn every_invalid_field_is_named_and_no_value_is_echoed() {
        let err = check(
            Method::PATCH,
            Some(r#"{"title": 123, "note": null, "email": "secret-not-an-email", "tags": ["a", "long-tag", "c"]}"#),
        )
        .await
        .expect_err("invalid");
        let errors = err["errors"].as_array().expect("errors");
        let named: Vec<(&str, &str)> =
            errors.iter().map(|e| (e["field"].as_str().unwrap(), e["message"].as_str().unwrap())).collect();
        assert!(named.contains(&("title", "must be a string")), "{named:?}");
        assert!(named.contains(&("email", "must be a valid email address")), "{named:?}");
        assert!(named.contains(&("tags", "must have at most 2 entries")), "{named:?}");
        assert!(named.contains(&("tags[1]", "must be at most 3 characters")), "{named:?}");
        assert!(!named.iter().any(|(f, _)| *f == "note"), "null is taken where the schema is nullable");
        assert!(!err.to_string().contains("secret-not-an-email"), "values are never echoed: {err}");
        assert_eq!(err["code"], "VALIDATION_FAILED");
    }

    #[tokio::test]
    async fn null_where_not_nullable_missing_fields_and_bad_json_are_refused() {
        let err = check(Method::PATCH, Some(r#"{"title": null}"#)).await.expect_err("null");
        assert_eq!(err["errors"][0]["field"], "title");
        let err = check(Method::PATCH, Some("{}")).await.expect_err("missing");
        assert_eq!(err["errors"][0], json!({"field": "title", "message": "is required"}));
        let err = check(Method::PATCH, Some("{")).await.expect_err("not JSON");
        assert_eq!(err["code"], "MALFORMED_REQUEST");
        assert!(check(Method::PATCH, Some(r#"{"title": "ok", "tags": ["a"]}"#)).await.is_ok());
    }

    #[tokio::test]
    async fn an_optional_body_may_be_left_out_entirely() {
        assert!(check(Method::POST, None).await.is_ok(), "no body, no content type");
        let err = check(Method::PATCH, None).await;
        assert!(err.is_ok(), "a required body without a content type is the operation's 415 to answer");
    }

    #[test]
    fn pointers_read_as_the_client_names_fields() {
        assert_eq!(field(""), "body");
        assert_eq!(field("/params/items/2/title"), "params.items[2].title");
        assert_eq!(field("/tags/0"), "tags[0]");
    }
}
