//! The per-request context: the request id every response and log line of a request carries.
//!
//! The id lives in a tokio task-local scoped around the request by the outermost middleware
//! ([`crate::http`]), so an [`ApiError`](crate::ApiError) built deep in a handler can put it in
//! its problem body without every layer passing it along.

use std::fmt;

use uuid::Uuid;

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of one request: echoed from a sane `X-Request-Id` header, generated (UUID v7) otherwise.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// The header that carries it in and out.
    pub const HEADER: &'static str = "x-request-id";

    /// Accepts a client's id when it is 1 to 128 characters of `A-Z a-z 0-9 . _ -`; anything
    /// else (empty, too long, spaces, control characters that could forge log lines) is refused.
    pub fn parse(value: &str) -> Option<Self> {
        let sane = (1..=128).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        sane.then(|| Self(value.to_owned()))
    }

    /// A new time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request being served on this task, if any.
    pub fn current() -> Option<Self> {
        REQUEST_ID.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with this id as the current request id.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        REQUEST_ID.scope(self, fut).await
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_sane_ids() {
        assert!(RequestId::parse("abc-123_x.y").is_some());
        assert!(RequestId::parse(&"a".repeat(128)).is_some());
        assert!(RequestId::parse(&"a".repeat(129)).is_none());
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("has space").is_none());
        assert!(RequestId::parse("line\nbreak").is_none());
    }

    #[tokio::test]
    async fn current_is_scoped_to_the_request() {
        assert!(RequestId::current().is_none());
        let id = RequestId::parse("req-1").unwrap();
        let seen = id.clone().scope(async { RequestId::current() }).await;
        assert_eq!(seen, Some(id));
    }
}
