//! Request body limit that holds with and without `Content-Length`.
//!
//! poem's own `SizeLimit` only reads `Content-Length` and answers 411 when it is missing (which
//! would refuse chunked uploads and even bodiless GETs). This one refuses a declared length over
//! the limit at once, and reads undeclared (chunked) bodies with the limit applied to the bytes
//! actually received.

use poem::{Endpoint, Middleware, Request, Result, error::ReadBodyError, http::header};

use crate::{ApiError, ErrorCode};

/// The body-limit middleware.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    limit: u64,
}

impl BodyLimit {
    /// Limits bodies to `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self { limit }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint { inner: ep, limit: self.limit }
    }
}

/// The endpoint made by [`BodyLimit`].
pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: u64,
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(poem::http::StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PAYLOAD_TOO_LARGE)
        .with_detail(format!("The request body exceeds the limit of {limit} bytes"))
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        enforce(&mut req, self.limit).await?;
        self.inner.call(req).await
    }
}

/// Refuses a declared length over `limit` at once, and buffers an undeclared (chunked) body
/// with the limit applied to the bytes that arrive. Bodiless requests pass untouched.
pub(crate) async fn enforce(req: &mut Request, limit: u64) -> std::result::Result<(), ApiError> {
    let declared = req.headers().get(header::CONTENT_LENGTH);
    match declared.map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok())) {
        Some(Some(len)) if len > limit => Err(too_large(limit)),
        Some(Some(_)) => Ok(()),
        Some(None) => Err(ApiError::malformed("Invalid Content-Length header")),
        None if has_body(req) => {
            let max = usize::try_from(limit).unwrap_or(usize::MAX);
            // Boxed: reading uses a 4 KiB buffer that would otherwise sit inside every caller's
            // future and be copied on every request, chunked or not.
            let bytes = match Box::pin(req.take_body().into_bytes_limit(max)).await {
                Ok(bytes) => bytes,
                Err(ReadBodyError::PayloadTooLarge) => return Err(too_large(limit)),
                Err(_) => return Err(ApiError::malformed("The request body could not be read")),
            };
            req.set_body(bytes);
            Ok(())
        }
        None => Ok(()),
    }
}

/// Whether the request announces a body without a length (chunked, or HTTP/2 data frames).
fn has_body(req: &Request) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING) || req.version() >= poem::http::Version::HTTP_2
}
