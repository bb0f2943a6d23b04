//! [`SerdeJson`]: a JSON response body written straight from a value's serde form.

use poem::{
    IntoResponse, Response,
    http::{HeaderValue, header},
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

impl<T: Type + Serialize + Send> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => {
                let mut response = Response::from(body);
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(Self::CONTENT_TYPE));
                response
            }
            Err(err) => crate::ApiError::internal(format_args!("a response body could not be written as JSON: {err}"))
                .into_response(),
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

/// Whether `value`'s serde form is its OpenAPI form (for a test per type sent as [`SerdeJson`]).
pub fn same_forms<T: ToJSON + Serialize>(value: &T) -> bool {
    serde_json::to_value(value).ok() == value.to_json()
}
