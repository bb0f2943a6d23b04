//! The throttle guard, as NestJS's `@Throttle('auth')` / `@SkipThrottle()`: rate-limit
//! policies evaluated per request, their state in the standard headers, 429 when a policy is
//! exceeded.
//!
//! The guard calls the [`Throttler`] port (implemented by the ratelimit module, installed by
//! the composition root as request data), so feature modules only ever name a policy where
//! they define an operation ([`rules`]):
//!
//! ```ignore
//! static SIGN_IN_LIMITS: ThrottleRule = ThrottleRule::new("signIn", &["strict"]).account(email_of);
//! ```
//!
//! Every `/api/` request passes the default policy, unless its operation skips it, and the
//! policies its operation names: all counted before routing, by [`screen`], together with the
//! session check, so they travel in one Redis pipeline. A request one policy refuses is taken
//! back from the others, so it is counted by none. [`LimitSlot`] collects each evaluated
//! policy's state; the request-context middleware writes the headers from it on every `/api/`
//! response, errors included.

mod rules;
mod screen;

pub use rules::{Entry, ThrottleRule, ThrottleTable};
pub use screen::{charge_failure, client_ip, handle, screen};

use std::{
    cell::RefCell,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use bytes::Bytes;
use poem::{
    Request,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
};
use smallvec::SmallVec;
use uuid::Uuid;

use crate::{ApiError, ErrorCode};

/// Who a policy counts: the parts a policy's subject may be built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The client address (the peer, or the rightmost untrusted `X-Forwarded-For` hop).
    pub ip: IpAddr,
    /// The authenticated user, when the request carries a valid access token.
    pub user: Option<Uuid>,
    /// The account the request names (a submitted email, say), as the operation's account
    /// extractor read it. Unverified: a policy counting it
    /// counts attempts against that account.
    pub account: Option<String>,
}

/// A policy as the throttle guard reports it, made once per policy (not per request): its
/// name and numbers, and the header values that never change, ready to be written as they are.
#[derive(Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// The policy's name.
    pub name: Box<str>,
    /// Requests allowed per window.
    pub limit: u32,
    /// The window, in seconds.
    pub window_secs: u64,
    /// `X-RateLimit-Limit`.
    limit_value: HeaderValue,
    /// This policy's item of `RateLimit-Policy`: `"api";q=100;w=60`.
    policy_item: HeaderValue,
}

impl ThrottlePolicy {
    /// The policy named `name` allowing `limit` requests per `window_secs`, made once per
    /// process and kept for its life: policies are few and fixed by configuration, and a
    /// `&'static` costs the hot path no reference count shared by every core.
    pub fn interned(name: &str, limit: u32, window_secs: u64) -> &'static Self {
        type Known = Vec<&'static ThrottlePolicy>;
        static KNOWN: std::sync::OnceLock<Mutex<Known>> = std::sync::OnceLock::new();
        let mut known = KNOWN.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(policy) =
            known.iter().find(|p| *p.name == *name && p.limit == limit && p.window_secs == window_secs)
        {
            return policy;
        }
        let item = format!("\"{name}\";q={limit};w={window_secs}");
        let policy: &'static Self = Box::leak(Box::new(Self {
            name: name.into(),
            limit,
            window_secs,
            limit_value: HeaderValue::from(limit),
            // Policy names are validated at start-up (letters, digits, `_`, `-`), so the item
            // is always a valid header value.
            policy_item: HeaderValue::try_from(item).unwrap_or_else(|_| HeaderValue::from_static("")),
        }));
        known.push(policy);
        policy
    }
}

/// One policy's state after a request was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitState {
    /// The policy.
    pub policy: &'static ThrottlePolicy,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the allowance is whole again.
    pub reset_secs: u64,
    /// `Some(seconds)` when this request was refused (429) and when to retry.
    pub retry_after: Option<u64>,
}

impl LimitState {
    /// Whether the request was refused.
    pub fn denied(&self) -> bool {
        self.retry_after.is_some()
    }

    /// The 429 problem for a refused request.
    pub fn problem(&self) -> ApiError {
        let retry = self.retry_after.unwrap_or(1).max(1);
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RATE_LIMITED)
            .with_detail(format!("Rate limit '{}' exceeded; retry in {retry} s", self.policy.name))
            .with_retry_after(retry)
    }
}

/// The port behind the throttle guard.
#[async_trait]
pub trait Throttler: Send + Sync + 'static {
    /// Counts one request of `subject` against `policy` (`route`: the operation, for policies
    /// scoped per route). `Ok(None)` when the policy does not apply (unknown subject kind, or
    /// the store is down and the policy fails open); `Err` for a fail-closed outage (503).
    async fn check(&self, policy: &str, route: &str, subject: &Subject) -> Result<Option<LimitState>, ApiError>;

    /// As [`check`](Self::check), and reads the integer at `read` (a user's version, in the
    /// subject's hash tag when it counts that user) in the same round trip where it can. The
    /// read is `None` when it was not made (then nothing in process is trusted), `Some(None)`
    /// when the key does not exist.
    async fn check_reading(
        &self,
        policy: &str,
        route: &str,
        subject: &Subject,
        read: &str,
    ) -> Result<(Option<LimitState>, Option<Option<i64>>), ApiError> {
        let _ = read;
        Ok((self.check(policy, route, subject).await?, None))
    }

    /// Takes back one request that [`check`](Self::check) admitted under `policy` (when
    /// another policy refused it). Best effort: a store outage only counts in the metrics.
    async fn refund(&self, policy: &str, route: &str, subject: &Subject);

    /// The client address of a request from `peer` with `headers` (trusted proxies considered).
    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr;

    /// The policy every `/api/` request passes, if any.
    fn default_policy(&self) -> Option<&str>;

    /// Whether `policy` is defined (a rule naming an undefined one stops start-up).
    fn has_policy(&self, policy: &str) -> bool;
}

/// The limiter a module provides (the ratelimit module), for the composition root to install.
#[derive(Clone)]
pub struct Limiter(pub Arc<dyn Throttler>);

/// The throttler and the operations' rules, one of the [`GuardPorts`](crate::guard::GuardPorts).
#[derive(Clone)]
pub struct ThrottleHandle {
    /// The limiter.
    pub throttler: Arc<dyn Throttler>,
    /// The rules the operations declare, by method and path.
    pub table: Arc<ThrottleTable>,
}

// The header names, made at compile time.
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The states of the policies evaluated for one request, for its response headers. Kept in the
/// request's [`RequestScope`](crate::context::RequestScope): a request evaluates one or two
/// policies, held inline.
#[derive(Default)]
pub struct LimitSlot(RefCell<SmallVec<[LimitState; 2]>>);

impl LimitSlot {
    /// Records a policy's state.
    pub fn push(&self, state: LimitState) {
        self.0.borrow_mut().push(state);
    }

    /// Records a policy's state for the answer to the request being served on this task (in
    /// no request's scope, as in a unit test of a guard, nothing is recorded).
    pub fn record(state: LimitState) {
        crate::context::RequestScope::with_current(move |scope| scope.limits().push(state));
    }

    /// Writes the rate-limit headers: `X-RateLimit-*` for the most constrained policy, and the
    /// IETF `RateLimit-Policy` / `RateLimit` fields listing every evaluated policy. (On every
    /// `/api/` response: the values that never change are made once per policy, and the
    /// numbers are written straight into one buffer per header.)
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let states = self.0.borrow();
        let Some(tightest) = states.iter().min_by_key(|s| (!s.denied(), s.remaining)) else { return };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        headers.insert(X_RATELIMIT_LIMIT, tightest.policy.limit_value.clone());
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(tightest.remaining));
        headers.insert(X_RATELIMIT_RESET, HeaderValue::from(now + tightest.reset_secs));
        let policy = match &states[..] {
            [one] => Some(one.policy.policy_item.clone()),
            many => {
                let items: Vec<&[u8]> = many.iter().map(|s| s.policy.policy_item.as_bytes()).collect();
                HeaderValue::from_maybe_shared(Bytes::from(items.join(&b", "[..]))).ok()
            }
        };
        let mut state = Vec::with_capacity(32 * states.len());
        let mut numbers = itoa::Buffer::new();
        for (i, s) in states.iter().enumerate() {
            if i > 0 {
                state.extend_from_slice(b", ");
            }
            state.push(b'"');
            state.extend_from_slice(s.policy.name.as_bytes());
            state.extend_from_slice(b"\";r=");
            state.extend_from_slice(numbers.format(s.remaining).as_bytes());
            state.extend_from_slice(b";t=");
            state.extend_from_slice(numbers.format(s.reset_secs).as_bytes());
        }
        for (name, value) in
            [(RATELIMIT_POLICY, policy), (RATELIMIT, HeaderValue::from_maybe_shared(Bytes::from(state)).ok())]
        {
            if let Some(value) = value {
                headers.insert(name, value);
            }
        }
        if let Some(retry) = states.iter().filter_map(|s| s.retry_after).max() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
        }
    }
}

/// Reads the account a request names from the request and its (buffered) body.
pub type AccountOf = fn(&Request, &[u8]) -> Option<String>;

#[cfg(test)]
mod tests {
    use poem::IntoResponse;

    use super::*;

    fn state(policy: &str, remaining: u32, retry: Option<u64>) -> LimitState {
        let policy = ThrottlePolicy::interned(policy, 10, 60);
        LimitState { policy, remaining, reset_secs: 17, retry_after: retry }
    }

    #[test]
    fn headers_show_the_tightest_policy_and_list_all() {
        let slot = LimitSlot::default();
        slot.push(state("api", 42, None));
        slot.push(state("strict", 0, Some(840)));
        let mut headers = HeaderMap::new();
        slot.write_headers(&mut headers);
        assert_eq!(headers["x-ratelimit-limit"], "10");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        assert_eq!(headers["ratelimit-policy"], "\"api\";q=10;w=60, \"strict\";q=10;w=60");
        assert_eq!(headers["ratelimit"], "\"api\";r=42;t=17, \"strict\";r=0;t=17");
        assert_eq!(headers["retry-after"], "840");
        let reset: u64 = headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset > 1_700_000_000, "epoch seconds");
    }

    #[test]
    fn a_denied_state_is_a_429_with_retry_after() {
        let resp = state("strict", 0, Some(30)).problem().into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "30");
    }
}
