//! Turning `validator` failures into the `VALIDATION_FAILED` problem.
//!
//! DTOs carry `#[validate(..)]` rules; controllers call [`validate`] first and then build domain
//! types. The mapping names fields as the client sent them (camelCase, `items[2].title`) and
//! never echoes submitted values (validator puts them in `params`, which could be a password).

use std::borrow::Cow;

use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::{ApiError, FieldError};

/// Validates `dto`, answering 400 `VALIDATION_FAILED` with one entry per invalid field.
pub fn validate<T: Validate>(dto: &T) -> Result<(), ApiError> {
    dto.validate().map_err(|errors| ApiError::validation(field_errors(&errors)))
}

/// Flattens validator's nested errors into field errors, sorted by field.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let name = if field == "__all__" { prefix.trim_end_matches('.').to_owned() } else { camel(field) };
        let path = if prefix.is_empty() || field == "__all__" { name } else { format!("{prefix}{name}") };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for err in list {
                    let message = err.message.clone().unwrap_or_else(|| Cow::Owned(describe(&err.code, err)));
                    out.push(FieldError::new(path.clone(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &format!("{path}."), out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]."), out);
                }
            }
        }
    }
}

/// A message for the built-in rules, from their parameters (never the submitted value).
fn describe(code: &str, err: &validator::ValidationError) -> String {
    let param = |name: &str| err.params.get(name).map(|v| v.to_string());
    match code {
        "email" => "must be a valid email address".into(),
        "url" => "must be a valid URL".into(),
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            (None, None) => "has an invalid length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            (None, None) => "is out of range".into(),
        },
        "required" => "is required".into(),
        other => format!("is invalid ({other})"),
    }
}

/// `page_size` -> `pageSize`: validator reports Rust field names.
fn camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use validator::Validate;

    use super::*;

    #[derive(Validate)]
    struct Signup {
        #[validate(email)]
        email: String,
        #[validate(length(min = 8, max = 128))]
        pass_word: String,
    }

    #[test]
    fn fields_are_camel_cased_and_values_never_echoed() {
        let dto = Signup { email: "nope".into(), pass_word: "hunter2".into() };
        let err = validate(&dto).expect_err("invalid");
        let problem = err.problem();
        let errors = problem.errors.expect("field errors");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "email");
        assert_eq!(errors[0].message, "must be a valid email address");
        assert_eq!(errors[1].field, "passWord");
        assert_eq!(errors[1].message, "must be 8 to 128 characters long");
        assert!(!serde_json::to_string(&errors).expect("json").contains("hunter2"));
    }
}
