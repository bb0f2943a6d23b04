//! [`Nullable`]: a PATCH field that may be absent (leave it), `null` (clear it) or a value.
//!
//! poem-openapi's `MaybeUndefined` parses exactly that but documents the field as not
//! nullable, so a client generated from the spec could not send the `null` the API accepts.
//! This wrapper parses the same way and marks the schema `nullable`.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchemaRef, Registry},
    types::{MaybeUndefined, ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// An optional, nullable field of a partial update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nullable<T>(pub MaybeUndefined<T>);

impl<T> Nullable<T> {
    /// `None`: absent; `Some(None)`: `null`; `Some(Some(v))`: a value.
    pub fn as_opt_ref(&self) -> Option<Option<&T>> {
        self.0.as_opt_ref()
    }
}

impl<T: Type> Type for Nullable<T> {
    const IS_REQUIRED: bool = false;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        format!("nullable_{}", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        match T::schema_ref() {
            MetaSchemaRef::Inline(mut schema) => {
                schema.nullable = true;
                MetaSchemaRef::Inline(schema)
            }
            // A named schema cannot be marked in place; the fields that use this are inline.
            reference => reference,
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_raw_value()
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        self.0.raw_element_iter()
    }

    fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Nullable<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        MaybeUndefined::<T>::parse_from_json(value).map(Nullable).map_err(ParseError::propagate)
    }
}

impl<T: ToJSON> ToJSON for Nullable<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_values_parse_apart_and_the_schema_is_nullable() {
        assert_eq!(Nullable::<String>::parse_from_json(None).expect("absent").as_opt_ref(), None);
        assert_eq!(Nullable::<String>::parse_from_json(Some(Value::Null)).expect("null").as_opt_ref(), Some(None));
        let v = Nullable::<u32>::parse_from_json(Some(Value::from(7))).expect("value");
        assert_eq!(v.as_opt_ref(), Some(Some(&7)));
        assert!(Nullable::<u32>::parse_from_json(Some(Value::from("x"))).is_err());
        match Nullable::<String>::schema_ref() {
            MetaSchemaRef::Inline(schema) => assert!(schema.nullable),
            MetaSchemaRef::Reference(_) => panic!("inline"),
        }
    }
}
