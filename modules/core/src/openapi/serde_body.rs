//! [`SerdeJson`]: a JSON response body written straight from a value's serde form;
//! [`JsonBodies`]: the bodies last written, kept as bytes while their values stand.

use std::{hash::Hash, marker::PhantomData, sync::Arc};

use bytes::Bytes;
use poem::{
    IntoResponse, Response,
    http::{HeaderMap, HeaderValue, header},
};
use poem_openapi::{
    ApiResponse,
    payload::{Json, Payload},
    registry::{MetaResponses, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use serde::Serialize;

/// A JSON response body documented as poem-openapi's [`Json<T>`] (same content type, same
/// schema, so the spec does not change) but written by serde in one pass. `Json<T>` first builds
/// a `serde_json::Value` tree of the answer (a map with owned keys, a string per field) and then
/// writes the tree: on the guarded cached read that cost about 7,700 instructions per request,
/// against 4,600 written directly.
///
/// For types whose serde form is their OpenAPI form (field names, enum spellings, timestamps):
/// each such type has a test that the two agree ([`same_forms`]).
#[derive(Debug, Clone)]
pub struct SerdeJson<T>(pub T);

impl<T: Type> Payload for SerdeJson<T> {
    const CONTENT_TYPE: &'static str = <Json<T> as Payload>::CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// The headers an API answer ends up with: its content type, `nosniff`, five rate-limit
/// headers, the request id and `Cache-Control` (and CORS's three, with SPA origins configured).
const API_HEADERS: usize = 12;

/// A JSON answer whose header map is sized at once for what the stack adds to it: grown on the
/// way (poem's map starts with room for six), it is reallocated and rehashed (about 600
/// instructions per request, callgrind).
fn json_response(body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::from(body);
    let headers = response.headers_mut();
    *headers = HeaderMap::with_capacity(API_HEADERS);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

impl<T: Type + Serialize + Send> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => json_response(body.into(), Self::CONTENT_TYPE),
            Err(err) => unwritable(&err).into_response(),
        }
    }
}

impl<T: Type + ToJSON + Serialize + Send> ApiResponse for SerdeJson<T> {
    fn meta() -> MetaResponses {
        <Json<T> as ApiResponse>::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A JSON body already written (by [`JsonBodies`]), documented as [`SerdeJson<T>`] is.
pub struct WrittenJson<T> {
    body: Bytes,
    of: PhantomData<fn() -> T>,
}

impl<T: Type> Payload for WrittenJson<T> {
    const CONTENT_TYPE: &'static str = <SerdeJson<T> as Payload>::CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + Send> IntoResponse for WrittenJson<T> {
    fn into_response(self) -> Response {
        json_response(self.body, Self::CONTENT_TYPE)
    }
}

impl<T: Type + ToJSON + Send> ApiResponse for WrittenJson<T> {
    fn meta() -> MetaResponses {
        <Json<T> as ApiResponse>::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// The JSON body last written for each key (a user's profile by the user's id, say), served
/// again as the same bytes while the value it was written from is equal to the one at hand.
/// An answer served from in-process copies otherwise spends most of its own work writing the
/// same JSON again: on the guarded cached read of a profile, writing it (the fields,
/// two RFC 3339 timestamps, a few allocations) cost about 3,200 instructions per request more
/// than finding the kept body (callgrind: 83.8k to 80.6k app instructions). The value is
/// compared whole, so a body is never one of another value; at most `capacity` bodies are
/// kept (the least used go first).
pub struct JsonBodies<K, T> {
    bodies: quick_cache::sync::Cache<K, Arc<(T, Bytes)>>,
}

impl<K: Eq + Hash + Clone, T: Type + Serialize + PartialEq + Send> JsonBodies<K, T> {
    /// Keeps at most `capacity` bodies.
    pub fn new(capacity: usize) -> Self {
        Self { bodies: quick_cache::sync::Cache::new(capacity.max(1)) }
    }

    /// `value`'s body: the one kept for `key` if it was written from an equal value, else
    /// written now (and kept).
    pub fn body(&self, key: K, value: T) -> Result<WrittenJson<T>, crate::ApiError> {
        if let Some(kept) = self.bodies.get(&key)
            && kept.0 == value
        {
            return Ok(WrittenJson { body: kept.1.clone(), of: PhantomData });
        }
        let body = Bytes::from(serde_json::to_vec(&value).map_err(|err| unwritable(&err))?);
        self.bodies.insert(key, Arc::new((value, body.clone())));
        Ok(WrittenJson { body, of: PhantomData })
    }
}

/// Whether `value`'s serde form is its OpenAPI form (for a test per type sent as [`SerdeJson`]).
pub fn same_forms<T: ToJSON + Serialize>(value: &T) -> bool {
    serde_json::to_value(value).ok() == value.to_json()
}

/// The 500 of a body serde could not write (a map with non-string keys, say): logged with the
/// cause, answered without it.
fn unwritable(err: &serde_json::Error) -> crate::ApiError {
    crate::ApiError::internal(format_args!("a response body could not be written as JSON: {err}"))
}

#[cfg(test)]
mod tests {
    use poem_openapi::Object;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Object, serde::Serialize)]
    struct Profile {
        name: String,
    }

    fn profile(name: &str) -> Profile {
        Profile { name: name.into() }
    }

    async fn text(body: WrittenJson<Profile>) -> String {
        body.into_response().into_body().into_string().await.unwrap()
    }

    #[tokio::test]
    async fn a_kept_body_is_served_only_for_an_equal_value() {
        let bodies = JsonBodies::new(8);
        let first = bodies.body(1, profile("Ada")).unwrap();
        let again = bodies.body(1, profile("Ada")).unwrap();
        assert_eq!(first.body.as_ptr(), again.body.as_ptr(), "the same bytes, not written again");
        assert_eq!(text(again).await, r#"{"name":"Ada"}"#);
        let renamed = bodies.body(1, profile("Grace")).unwrap();
        assert_ne!(first.body.as_ptr(), renamed.body.as_ptr());
        assert_eq!(text(renamed).await, r#"{"name":"Grace"}"#);
        assert_eq!(text(bodies.body(2, profile("Ada")).unwrap()).await, r#"{"name":"Ada"}"#);
        let resp = bodies.body(1, profile("Grace")).unwrap().into_response();
        assert_eq!(resp.headers()[header::CONTENT_TYPE], <SerdeJson<Profile> as Payload>::CONTENT_TYPE);
    }

    #[test]
    fn bodies_are_bounded() {
        let bodies = JsonBodies::new(4);
        for key in 0..100 {
            bodies.body(key, profile("Ada")).unwrap();
        }
        assert!(bodies.bodies.len() <= 4, "{} bodies kept", bodies.bodies.len());
    }
}
