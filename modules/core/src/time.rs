//! [`Timestamp`]: how every time in the API is written, RFC 3339 in UTC with a `Z`
//! (`2026-11-22T10:00:00.000Z`), as API.md promises. (poem-openapi's own `DateTime<Utc>`
//! writes `+00:00`.)

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// A point in time, sent as RFC 3339 UTC with millisecond precision and a `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// From epoch milliseconds (out-of-range values become the epoch).
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(DateTime::from_timestamp_millis(ms).unwrap_or_default())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

impl Type for Timestamp {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Timestamp(DateTime::parse_from_rfc3339(&s)?.with_timezone(&Utc))),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

/// The same text as [`ToJSON`] (for bodies written by serde, `crate::openapi::SerdeJson`).
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.to_rfc3339_opts(SecondsFormat::Millis, true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_utc_with_a_z_and_reads_it_back() {
        let t = Timestamp::from_millis(1_795_000_000_123);
        let json = t.to_json().expect("json");
        assert_eq!(json, Value::String("2026-11-18T11:06:40.123Z".into()));
        assert_eq!(Timestamp::parse_from_json(Some(json)).expect("parses"), t);
    }
}
