//! Counting a request: before routing ([`screen`]: the default policy and the operation's
//! declared ones, with the session check), and the operation's own transform ([`Throttled`]).

use poem::{Endpoint, IntoResponse, Request, Response, http::header};

use super::{LimitSlot, LimitState, Subject, ThrottleHandle, ThrottleRule, Throttler};
use crate::{
    ApiError,
    guard::{PreVerified, Verifier, bearer_token},
};

/// Left on a request whose operation's rule [`screen`] counted, so the operation's
/// [`Throttled`] does not count it again.
#[derive(Clone, Copy)]
pub struct Screened(pub &'static ThrottleRule);

/// Screens an `/api/` request before routing: installs the session verifier and the
/// throttler as request data, and counts the request against the default policy (unless its
/// operation skips it) and the policies its operation names. When the request carries an
/// access token that verifies in process, the session check runs together with the counts
/// (one Redis pipeline) and its result is left for the bearer guard.
pub async fn screen(req: &mut Request, verifier: &Verifier, throttle: Option<&ThrottleHandle>) -> poem::Result<()> {
    req.set_data(verifier.clone());
    let Some(handle) = throttle else { return Ok(()) };
    req.set_data(handle.clone());
    let throttler = &*handle.throttler;
    let entry = handle.table.find(req.method(), req.uri().path());
    let default = throttler.default_policy().filter(|_| !entry.is_some_and(|e| e.rule.skip_default));
    if let Some(entry) = entry {
        req.set_data(Screened(entry.rule));
    }
    let named = entry.map_or(&[][..], |e| e.rule.policies);
    if default.is_none() && named.is_empty() {
        return Ok(());
    }
    let account = match entry.and_then(|e| e.rule.account) {
        Some(account_of) => read_account(req, account_of).await?,
        None => None,
    };
    let slot = req.data::<LimitSlot>().cloned();
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let begun = authorization.as_ref().and_then(bearer_token).and_then(|t| verifier.0.begin(t));
    let user = begun.as_ref().map(|(user, _)| *user);
    let subject = Subject { ip: throttler.client_ip(req), user, account };
    let Some(entry) = entry else {
        // The common case, kept lean: the default policy alone (global by configuration, so no
        // route), next to the session check.
        let limit = throttler.check(default.unwrap_or_default(), "", &subject);
        let state = match (authorization, begun) {
            (Some(authorization), Some((user, session))) => {
                let (verified, state) = futures::join!(session, limit);
                req.set_data(PreVerified { authorization, user, result: verified });
                state?
            }
            _ => limit.await?,
        };
        if let Some(state) = state {
            let refused = state.denied().then(|| state.problem());
            if let Some(slot) = slot {
                slot.push(state);
            }
            if let Some(problem) = refused {
                return Err(problem.into());
            }
        }
        return Ok(());
    };
    let policies: Vec<&str> = default.into_iter().chain(named.iter().copied()).collect();
    let checks = futures::future::join_all(policies.iter().map(|p| throttler.check(p, &entry.route, &subject)));
    let results = match (authorization, begun) {
        (Some(authorization), Some((user, session))) => {
            let (verified, results) = futures::join!(session, checks);
            req.set_data(PreVerified { authorization, user, result: verified });
            results
        }
        _ => checks.await,
    };
    settle(throttler, &policies, &entry.route, &subject, results, slot.as_ref()).await.map_err(Into::into)
}

/// The account a request names, read by `account_of` from its body (buffered, within the
/// server's body limit, and put back as read).
async fn read_account(req: &mut Request, account_of: super::AccountOf) -> poem::Result<Option<String>> {
    let bytes = req.take_body().into_bytes().await?;
    let account = account_of(req, &bytes);
    req.set_body(bytes);
    Ok(account)
}

/// Records each counted policy's state and decides. The request is refused when a policy
/// refused it (the answer names the one that keeps the client out longest, so `retryAfter`
/// and `Retry-After` agree) or a fail-closed policy's store is down; then the policies that
/// admitted it take it back, so a refused request is counted by none. (Without that, an
/// attacker whose login attempts `auth` already refuses would go on spending the allowance
/// `auth_account` keeps for the account's owner, and could lock the owner out from one address.)
async fn settle(
    throttler: &dyn Throttler,
    policies: &[&str],
    route: &str,
    subject: &Subject,
    results: Vec<Result<Option<LimitState>, ApiError>>,
    slot: Option<&LimitSlot>,
) -> Result<(), ApiError> {
    let mut refused: Option<LimitState> = None;
    let mut unavailable = None;
    let mut states = Vec::with_capacity(results.len());
    let mut admitted = Vec::new();
    for (policy, result) in policies.iter().zip(results) {
        match result {
            Ok(Some(state)) => {
                if state.retry_after > refused.as_ref().and_then(|r| r.retry_after) {
                    refused = Some(state.clone());
                }
                if !state.denied() {
                    admitted.push(*policy);
                }
                states.push(state);
            }
            Ok(None) => {}
            Err(err) => unavailable = Some(err),
        }
    }
    if (refused.is_some() || unavailable.is_some()) && !admitted.is_empty() {
        futures::future::join_all(admitted.iter().map(|policy| throttler.refund(policy, route, subject))).await;
        for state in states.iter_mut().filter(|s| !s.denied()) {
            state.remaining = (state.remaining + 1).min(state.policy.limit);
        }
    }
    if let Some(slot) = slot {
        states.into_iter().for_each(|state| slot.push(state));
    }
    if let Some(err) = unavailable {
        return Err(err);
    }
    refused.map_or(Ok(()), |state| Err(state.problem()))
}

/// An operation with a rate-limit rule (declare it with
/// [`throttle_policy!`](crate::throttle_policy) or [`skip_throttle!`](crate::skip_throttle)).
/// [`screen`] counts the rule's policies before routing; this transform only counts them
/// itself if the screen did not (its table missed the rule), so the rule holds either way.
pub struct Throttled<E> {
    inner: E,
    rule: &'static ThrottleRule,
}

impl<E> Throttled<E> {
    /// Wraps an operation, recording its rule for the composition root's table.
    pub fn new(inner: E, rule: &'static ThrottleRule) -> Self {
        super::rules::declare(rule);
        Self { inner, rule }
    }
}

impl<E: Endpoint> Endpoint for Throttled<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let screened = req.data::<Screened>().is_some_and(|s| std::ptr::eq(s.0, self.rule));
        let handle = req.data::<ThrottleHandle>().cloned();
        let (Some(handle), false, false) = (handle, screened, self.rule.policies.is_empty()) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        // A programming error (start-up logs it too), so said once, not per request.
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(operation = self.rule.operation, "the throttle table lacks this operation's rule");
        }
        let account = match self.rule.account {
            Some(account_of) => read_account(&mut req, account_of).await?,
            None => None,
        };
        let route = match req.data::<poem::PathPattern>() {
            Some(p) => format!("{} {}", req.method(), p.0),
            None => format!("{} {}", req.method(), req.uri().path()),
        };
        let throttler = &*handle.throttler;
        let user = req.data::<PreVerified>().map(|p| p.user);
        let subject = Subject { ip: throttler.client_ip(&req), user, account };
        let policies = self.rule.policies;
        let results =
            futures::future::join_all(policies.iter().map(|policy| throttler.check(policy, &route, &subject))).await;
        settle(throttler, policies, &route, &subject, results, req.data::<LimitSlot>()).await?;
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}
