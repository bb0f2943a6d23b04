//! OpenAPI 3.0 schemas as JSON Schema, for validation: `nullable: true` becomes a `null` type,
//! and a `oneOf` with a `discriminator` (the job types' union) becomes a choice by the
//! discriminator's value, so a wrong value is named on that property and a right one is
//! checked against its own branch alone.

use serde_json::{Map, Value, json};

/// `schema` (OpenAPI 3.0) as JSON Schema (draft 7).
pub fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), json_schema(v))).collect();
            if out.get("nullable").and_then(Value::as_bool) == Some(true) {
                out.remove("nullable");
                match out.get("type").cloned() {
                    Some(Value::String(ty)) => {
                        out.insert("type".into(), json!([ty, "null"]));
                        if let Some(Value::Array(options)) = out.get_mut("enum") {
                            options.push(Value::Null);
                        }
                    }
                    _ => return json!({ "anyOf": [Value::Object(out), { "type": "null" }] }),
                }
            }
            if let (Some(Value::Array(branches)), Some(discriminator)) = (out.get("oneOf"), out.get("discriminator")) {
                return discriminated(branches.clone(), discriminator);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

/// A discriminated union: the property must name one of the branches (by the mapping), and the
/// branch it names applies.
fn discriminated(branches: Vec<Value>, discriminator: &Value) -> Value {
    let property = discriminator.get("propertyName").and_then(Value::as_str).unwrap_or("type").to_owned();
    let mapping = discriminator.get("mapping").and_then(Value::as_object).cloned().unwrap_or_default();
    let values: Vec<Value> = mapping.keys().map(|k| Value::String(k.clone())).collect();
    let mut all = vec![json!({
        "type": "object",
        "required": [property],
        "properties": { property.clone(): { "type": "string", "enum": values } }
    })];
    for (value, reference) in mapping {
        all.push(json!({
            "if": { "properties": { property.clone(): { "const": value } } },
            "then": { "$ref": reference }
        }));
    }
    if branches.is_empty() {
        return json!({ "allOf": all });
    }
    json!({ "allOf": all })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_a_null_type() {
        assert_eq!(json_schema(&json!({"type": "string", "nullable": true})), json!({"type": ["string", "null"]}));
        assert_eq!(
            json_schema(&json!({"allOf": [{"$ref": "#/x"}], "nullable": true})),
            json!({"anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}]})
        );
    }

    #[test]
    fn a_discriminated_union_checks_the_named_branch() {
        let union = json!({
            "oneOf": [{"$ref": "#/components/schemas/A"}],
            "discriminator": {"propertyName": "type", "mapping": {"a": "#/components/schemas/A"}}
        });
        let converted = json_schema(&union);
        assert_eq!(converted["allOf"][0]["properties"]["type"]["enum"], json!(["a"]));
        assert_eq!(converted["allOf"][1]["then"]["$ref"], "#/components/schemas/A");
    }
}
