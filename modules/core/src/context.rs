//! The per-request context: the request id every response and log line of a request carries,
//! the rate-limit states its response reports, the route it matched (its metrics label), and
//! the user's version it read ([`crate::versions`]).
//!
//! They live in one scope, current on the thread while the outermost middleware ([`crate::http`])
//! polls the request's future, so an [`ApiError`](crate::ApiError) built deep in a handler can put the id
//! in its problem body, and the throttle guard can record a policy's state, without every layer
//! passing them along. The middleware takes the scope back when the request is answered: the id
//! goes into the response as it is, never copied or shared.

use std::{
    cell::{Cell, OnceCell},
    fmt,
    sync::Arc,
};

use poem::http::{HeaderName, HeaderValue};

use crate::{throttle::LimitSlot, versions::ReadVersion};

scoped_tls::scoped_thread_local! {
    /// The scope of the request whose future is being polled on this thread. Set for each poll
    /// by reference (tokio's task-locals move the value into the thread's slot and back out on
    /// every poll: a few hundred bytes copied twice per poll, about 500 instructions per request).
    static REQUEST: RequestScope
}

/// What a request carries from the outermost middleware to the code that serves it and back.
///
/// A scoped thread-local rather than request data: request data is a boxed entry in the request's map,
/// and a state recorded there must be shared (an `Arc` and a lock) to be read again once the
/// request has been handed down. Here the states stay inline (two policies without a heap
/// allocation) and the scope is handed back whole.
pub struct RequestScope {
    id: RequestId,
    limits: LimitSlot,
    route: OnceCell<Arc<str>>,
    read: Cell<Option<ReadVersion>>,
}

impl RequestScope {
    /// The scope of a request with `id`, no policy evaluated yet.
    pub fn new(id: RequestId) -> Self {
        Self { id, limits: LimitSlot::default(), route: OnceCell::new(), read: Cell::new(None) }
    }

    /// Runs `fut` in this scope; the scope comes back with the output, holding what was
    /// recorded in it.
    pub async fn run<F: Future>(self, fut: F) -> (F::Output, Self) {
        Scoped { scope: Some(self), fut: std::pin::pin!(fut) }.await
    }

    /// The states of the policies evaluated for the request.
    pub fn limits(&self) -> &LimitSlot {
        &self.limits
    }

    /// The path template the router matched for the request (`/api/v1/notes/:id`), if one did.
    pub fn route(&self) -> Option<&Arc<str>> {
        self.route.get()
    }

    /// Records the path template matched for the request being served on this task: the
    /// metrics label, without a datum in the response's map (a boxed entry, allocated per
    /// request). The first record stands.
    pub fn record_route(pattern: &Arc<str>) {
        Self::with_current(|scope| {
            let _ = scope.route.set(pattern.clone());
        });
    }

    /// The user's version the request read (see [`crate::versions`]).
    pub(crate) fn read(&self) -> &Cell<Option<ReadVersion>> {
        &self.read
    }

    /// The request's id, given up for the response.
    pub fn into_id(self) -> RequestId {
        self.id
    }

    /// Runs `f` on the scope of the request whose future is being polled here, if any.
    pub fn with_current<R>(f: impl FnOnce(&Self) -> R) -> Option<R> {
        REQUEST.is_set().then(|| REQUEST.with(f))
    }
}

/// A future polled with its request's scope current (see [`RequestScope::run`]).
struct Scoped<'a, F> {
    /// Until the future is done; then handed back with its output.
    scope: Option<RequestScope>,
    fut: std::pin::Pin<&'a mut F>,
}

impl<F: Future> Future for Scoped<'_, F> {
    type Output = (F::Output, RequestScope);

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let Scoped { scope, fut } = &mut *self;
        let Some(current) = scope.as_ref() else { return std::task::Poll::Pending };
        let output = std::task::ready!(REQUEST.set(current, || fut.as_mut().poll(cx)));
        std::task::Poll::Ready((output, scope.take().expect("the scope is held until the future is done")))
    }
}

/// The id of one request: echoed from a sane `X-Request-Id` header, generated (UUID v7) otherwise.
///
/// Held as a header value (validated ASCII), so echoing it in the response copies nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The header that carries it in and out.
    pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

    /// Accepts a client's id when it is 1 to 128 characters of `A-Z a-z 0-9 . _ -`; anything
    /// else (empty, too long, spaces, control characters that could forge log lines) is refused.
    pub fn parse(value: &str) -> Option<Self> {
        Self::from_header(&HeaderValue::from_str(value).ok()?)
    }

    /// As [`parse`](Self::parse), from a request header, without copying it.
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let sane = (1..=128).contains(&bytes.len())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        sane.then(|| Self(value.clone()))
    }

    /// A new time-ordered id (a UUID v7). Its random bits come from the thread-local generator,
    /// not a system call per request: an id must be unique, not secret.
    pub fn generate() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut random = [0u8; 10];
        rand::fill(&mut random);
        let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid.hyphenated().encode_lower(&mut buf);
        Self(HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only sane ASCII ids are ever constructed.
        self.0.to_str().unwrap_or_default()
    }

    /// The id, given up as a header value (for the response).
    pub fn into_header_value(self) -> HeaderValue {
        self.0
    }

    /// The id of the request being served on this task, if any.
    pub fn current() -> Option<Self> {
        RequestScope::with_current(|scope| scope.id.clone())
    }

    /// Runs `fut` with this id as the current request id.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        RequestScope::new(self).run(fut).await.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
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
