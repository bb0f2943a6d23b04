//! Counting a request before routing: the default policy and the operation's declared ones,
//! with the session check.

use std::sync::Arc;

use poem::{Request, http::header};

use super::{LimitSlot, LimitState, Subject, ThrottleHandle, Throttler};
use crate::{
    ApiError,
    guard::{GuardPorts, Guards, PreVerified, bearer_bytes},
    versions::{ReadVersion, UserVersions},
};

/// Screens an `/api/` request before routing: installs the guards' ports as request data
/// ([`Guards`]), and counts the request against the default policy (unless its operation skips
/// it) and the policies its operation names. When the request carries an access token that
/// verifies in process, the session check runs together with the counts (one Redis pipeline)
/// and its result is left for the bearer guard; the user's version the counts read goes into
/// the request's scope ([`crate::versions::record`]).
pub async fn screen(req: &mut Request, ports: &Arc<GuardPorts>, versions: Option<&UserVersions>) -> poem::Result<()> {
    let mut pre = None;
    let read = count(req, ports, versions, &mut pre).await;
    req.set_data(Guards { ports: ports.clone(), pre });
    read
}

/// [`screen`]'s counts; the session check it ran goes to `pre`.
async fn count(
    req: &mut Request,
    ports: &GuardPorts,
    versions: Option<&UserVersions>,
    pre: &mut Option<PreVerified>,
) -> poem::Result<()> {
    if req.headers().get_all(header::AUTHORIZATION).iter().nth(1).is_some() {
        // Which one would count is anyone's guess (a proxy may have added one): refuse.
        return Err(ApiError::malformed("Send one Authorization header, not several").into());
    }
    let verifier = ports.verifier.as_ref();
    let Some(handle) = &ports.throttle else { return Ok(()) };
    let throttler = &*handle.throttler;
    let entry = handle.table.find(req.method(), req.uri().path());
    let default = throttler.default_policy().filter(|_| !entry.is_some_and(|e| e.rule.skip_default));
    let named = entry.map_or(&[][..], |e| e.rule.policies);
    if default.is_none() && named.is_empty() {
        return Ok(());
    }
    let account = match entry.and_then(|e| e.rule.account) {
        Some(account_of) => read_account(req, account_of).await?,
        None => None,
    };
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let mut begun = authorization.as_ref().and_then(bearer_bytes).zip(verifier).and_then(|(t, v)| v.0.begin(t));
    let user = begun.as_ref().map(|(user, _)| *user);
    let subject = Subject { ip: client_ip(throttler, req), user, account };
    let Some(entry) = entry else {
        let policy = default.unwrap_or_default();
        if let Some(versions) = versions
            && let Some(authorization) = &authorization
            && let Some(key) = begun.as_ref().and_then(|(user, _)| versions.key(*user))
            && let Some((user, session)) = begun.take()
        {
            // The hot path: one script counts the request and reads the user's version; the
            // session check then runs with it, from what this instance keeps when it says that
            // is current (no second round trip).
            let (state, version) = throttler.check_reading(policy, "", &subject, &key).await?;
            let read = version.map(|version| ReadVersion { user, version });
            record(state)?;
            crate::versions::record(read);
            let result = session.await;
            *pre = Some(PreVerified { authorization: authorization.clone(), user, result });
            return Ok(());
        }
        // The common case, kept lean: the default policy alone (global by configuration, so no
        // route), next to the session check.
        let limit = throttler.check(policy, "", &subject);
        let state = match (authorization, begun) {
            (Some(authorization), Some((user, session))) => {
                let (verified, state) = futures::join!(session, limit);
                *pre = Some(PreVerified { authorization, user, result: verified });
                state?
            }
            _ => limit.await?,
        };
        record(state)?;
        return Ok(());
    };
    let policies: Vec<&str> = default.into_iter().chain(named.iter().copied()).collect();
    let checks = futures::future::join_all(policies.iter().map(|p| throttler.check(p, &entry.route, &subject)));
    let results = match (authorization, begun) {
        (Some(authorization), Some((user, session))) => {
            let (verified, results) = futures::join!(session, checks);
            *pre = Some(PreVerified { authorization, user, result: verified });
            results
        }
        _ => checks.await,
    };
    settle(throttler, &policies, &entry.route, &subject, results).await?;
    Ok(())
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
/// attacker whose attempts at an account one policy (address + account) already refuses would
/// go on spending the allowance another policy (the account alone) keeps for the account's
/// owner, and could lock the owner out from one address.)
async fn settle(
    throttler: &dyn Throttler,
    policies: &[&str],
    route: &str,
    subject: &Subject,
    results: Vec<Result<Option<LimitState>, ApiError>>,
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
    states.into_iter().for_each(LimitSlot::record);
    if let Some(err) = unavailable {
        return Err(err);
    }
    refused.map_or(Ok(()), |state| Err(state.problem()))
}

/// The client address of `req` as `throttler` resolves it (trusted proxies considered).
pub fn client_ip(throttler: &dyn Throttler, req: &Request) -> std::net::IpAddr {
    throttler.client_ip(req.remote_addr().as_socket_addr().map(|a| a.ip()), req.headers())
}

/// Counts a failed request of an operation whose rule declares
/// [`failures`](super::ThrottleRule::failures) against that policy, by its client address
/// alone; the 429 problem once the address is over the allowance. Only failures are counted
/// and only failures answered 429, so a valid credential is never refused by this count: a
/// neighbour behind the same address cannot lock its owner out. Without a limiter or a
/// declared policy, or with the limiter's store down, nothing is counted.
pub async fn charge_failure(req: &Request) -> Result<(), ApiError> {
    let Some(handle) = handle(req) else { return Ok(()) };
    let Some(entry) = handle.table.find(req.method(), req.uri().path()) else { return Ok(()) };
    let Some(policy) = entry.rule.failures else { return Ok(()) };
    let throttler = &*handle.throttler;
    let subject = Subject { ip: client_ip(throttler, req), user: None, account: None };
    let Ok(state) = throttler.check(policy, &entry.route, &subject).await else { return Ok(()) };
    record(state)
}

/// Records one policy's state for the answer's headers; the 429 problem when it refused.
fn record(state: Option<LimitState>) -> Result<(), ApiError> {
    let Some(state) = state else { return Ok(()) };
    let refused = state.denied().then(|| state.problem());
    LimitSlot::record(state);
    refused.map_or(Ok(()), Err)
}

/// The throttler installed on `req`, if any.
pub fn handle(req: &Request) -> Option<&ThrottleHandle> {
    req.data::<Guards>()?.ports.throttle.as_ref()
}
