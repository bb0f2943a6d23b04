//! The limiter behind the throttle guard: policies from config, subjects, keys, fail-open or
//! fail-closed, one warning per outage.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use app_core::http::HeaderMap;
use app_core::{
    ApiError,
    metrics::Metrics,
    throttle::{LimitState, Subject, ThrottlePolicy, Throttler},
};
use app_redis::RedisError;
use async_trait::async_trait;
use ipnet::IpNet;
use prometheus_client::{encoding::EncodeLabelSet, metrics::counter::Counter, metrics::family::Family};
use sha2::{Digest, Sha256};

use crate::{
    FailureMode, ForwardedHeader, PolicyConfig, RateLimitConfig, Scope, SubjectKind,
    client_ip::{canonical, client_ip},
    store::{CompiledLimit, Limit, Outcome, RateLimitStore},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabel {
    policy: String,
    outcome: &'static str,
}

/// A compiled policy: its store form, header values, key prefix and decision counters are
/// made once (nothing about the policy is allocated or formatted per request).
struct Policy {
    reported: &'static ThrottlePolicy,
    config: PolicyConfig,
    limit: Limit,
    compiled: CompiledLimit,
    /// `rl:<name>:`, the start of every key of the policy.
    key_prefix: String,
    allowed: Counter,
    limited: Counter,
    unavailable: Counter,
}

/// The rate limiter.
pub struct RateLimiter {
    enabled: bool,
    default_policy: Option<String>,
    policies: app_core::FastMap<String, Policy>,
    trusted: Vec<IpNet>,
    forwarded_header: ForwardedHeader,
    store: Arc<dyn RateLimitStore>,
    /// Whether the store is known to be failing (so an outage is logged once, not per request).
    outage: AtomicBool,
}

/// An address as counted: IPv4 as is, IPv6 by its /64 (one subscriber usually holds a whole
/// /64, and counting each address would give them 2^64 allowances).
fn address_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc()).unwrap_or_else(|_| v6.into());
            net.to_string()
        }
        v4 => v4.to_string(),
    }
}

/// A subject as it appears in keys and on the admin routes.
fn account_key(account: &str) -> String {
    // Hashed: keys never hold an email address, and odd characters cannot break the key.
    let digest = Sha256::digest(account.trim().to_lowercase().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl RateLimiter {
    /// A limiter over `store`, registering its metrics in `metrics`.
    pub fn new(config: &RateLimitConfig, store: Arc<dyn RateLimitStore>, metrics: &Metrics) -> Self {
        let decisions = Family::<PolicyLabel, Counter>::default();
        metrics.register(
            "rate_limit_decisions",
            "Rate-limit decisions by policy and outcome (allowed, limited, store_unavailable)",
            decisions.clone(),
        );
        let policies = config
            .policies
            .iter()
            .map(|(name, p)| {
                let limit = Limit {
                    limit: p.limit,
                    window_ms: p.window.as_millis() as u64,
                    block_ms: p.block.map_or(0, |b| b.as_millis() as u64),
                };
                let counter = |outcome| decisions.get_or_create(&PolicyLabel { policy: name.clone(), outcome }).clone();
                let secs = limit.window_ms.div_ceil(1000);
                let policy = Policy {
                    reported: ThrottlePolicy::interned(name, limit.limit, secs),
                    config: p.clone(),
                    limit,
                    compiled: store.compile(limit),
                    key_prefix: format!("rl:{name}:"),
                    allowed: counter("allowed"),
                    limited: counter("limited"),
                    unavailable: counter("store_unavailable"),
                };
                (name.clone(), policy)
            })
            .collect();
        Self {
            enabled: config.enabled,
            default_policy: (!config.default_policy.is_empty()).then(|| config.default_policy.clone()),
            policies,
            trusted: config.trusted_networks(),
            forwarded_header: config.forwarded_header,
            store,
            outage: AtomicBool::new(false),
        }
    }

    /// Writes the subject part of a key into `out`; `false` when the policy does not count
    /// this request.
    fn write_subject(kind: SubjectKind, subject: &Subject, out: &mut String) -> bool {
        let ip = |out: &mut String| {
            out.push_str("ip:");
            out.push_str(&address_key(subject.ip));
        };
        let user = |out: &mut String, u: &uuid::Uuid| {
            out.push_str("u:");
            out.push_str(u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()));
        };
        let account = |out: &mut String, a: &str| {
            out.push_str("a:");
            out.push_str(&account_key(a));
        };
        match (kind, subject.user.as_ref(), subject.account.as_deref()) {
            (SubjectKind::Ip, ..) | (SubjectKind::UserOrIp, None, _) | (SubjectKind::IpAndAccount, _, None) => ip(out),
            (SubjectKind::User | SubjectKind::UserOrIp, Some(u), _) => user(out, u),
            (SubjectKind::Account, _, Some(a)) => account(out, a),
            (SubjectKind::IpAndAccount, _, Some(a)) => {
                ip(out);
                out.push('|');
                account(out, a);
            }
            (SubjectKind::User, None, _) | (SubjectKind::Account, _, None) => return false,
        }
        true
    }

    /// The store key: `rl:<policy>:[<route hash>:]{<subject>}`, or `None` when the policy does
    /// not count this request. The subject is the hash tag, so the state and the block key
    /// share a slot (and a user's keys share the slot of the user's session).
    fn key(policy: &Policy, route: &str, subject: &Subject) -> Option<String> {
        let mut key = String::with_capacity(policy.key_prefix.len() + 64);
        key.push_str(&policy.key_prefix);
        if policy.config.scope == Scope::Route {
            let h = Sha256::digest(route.as_bytes());
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(key, "{:02x}{:02x}{:02x}{:02x}:", h[0], h[1], h[2], h[3]);
        }
        key.push('{');
        if !Self::write_subject(policy.config.subject, subject, &mut key) {
            return None;
        }
        key.push('}');
        Some(key)
    }

    fn state(policy: &Policy, outcome: &Outcome) -> LimitState {
        let secs = |ms: u64| ms.div_ceil(1000);
        LimitState {
            policy: policy.reported,
            remaining: outcome.remaining,
            reset_secs: secs(outcome.reset_ms),
            retry_after: (!outcome.allowed).then(|| secs(outcome.retry_after_ms).max(1)),
        }
    }

    /// Books a decision the store made: the store answers, the policy's counters, the state.
    fn decided(&self, policy: &Policy, outcome: &Outcome) -> LimitState {
        self.store_ok();
        if outcome.allowed {
            policy.allowed.inc()
        } else {
            policy.limited.inc()
        };
        Self::state(policy, outcome)
    }

    /// Whether `key`'s hash tag is `user`'s (`{u:<id>}`, where the user's version lives),
    /// without making a string per request.
    fn tagged_for(key: &str, user: uuid::Uuid) -> bool {
        let mut buffer = uuid::Uuid::encode_buffer();
        let id = user.hyphenated().encode_lower(&mut buffer);
        key.strip_suffix('}').and_then(|k| k.strip_suffix(&*id)).is_some_and(|k| k.ends_with("{u:"))
    }

    fn store_failed(&self, policy: &Policy, err: &RedisError) -> Result<Option<LimitState>, ApiError> {
        policy.unavailable.inc();
        if !self.outage.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %err,
                "rate limiting cannot reach its store; policies fail open or closed as configured until it is back"
            );
        }
        match policy.config.on_unavailable {
            FailureMode::Open => Ok(None),
            FailureMode::Closed => Err(ApiError::unavailable("Rate limiting")),
        }
    }

    fn store_ok(&self) {
        if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::Relaxed) {
            tracing::info!("rate limiting reaches its store again");
        }
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<(&PolicyConfig, &Limit)> {
        self.policies.get(name).map(|p| (&p.config, &p.limit))
    }

    /// The store key of an admin subject (`user:<uuid>`, `ip:<address>`, `email:<address>`,
    /// `ip:<address>,email:<address>`), for `policy` and `route` (route-scoped policies).
    pub fn admin_key(&self, policy: &str, subject: &str, route: &str) -> Option<String> {
        let policy = self.policies.get(policy)?;
        let mut ip = None;
        let mut user = None;
        let mut account = None;
        for part in subject.split(',') {
            let (kind, value) = part.trim().split_once(':')?;
            match kind {
                "ip" => ip = Some(canonical(value.parse::<IpAddr>().ok()?)),
                "user" => user = Some(value.parse().ok()?),
                "email" | "account" => account = Some(value.to_owned()),
                _ => return None,
            }
        }
        let subject = Subject { ip: ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), user, account };
        let needs_ip = matches!(policy.config.subject, SubjectKind::Ip | SubjectKind::IpAndAccount)
            || (policy.config.subject == SubjectKind::UserOrIp && user.is_none());
        if needs_ip && ip.is_none() {
            return None;
        }
        Self::key(policy, route, &subject)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn RateLimitStore> {
        &self.store
    }
}

#[async_trait]
impl Throttler for RateLimiter {
    async fn check(&self, policy: &str, route: &str, subject: &Subject) -> Result<Option<LimitState>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let Some(policy) = self.policies.get(policy) else {
            tracing::error!(policy, "an operation names a rate-limit policy that is not configured");
            return Ok(None);
        };
        let Some(key) = Self::key(policy, route, subject) else { return Ok(None) };
        match self.store.hit(&key, &policy.compiled).await {
            Ok(outcome) => Ok(Some(self.decided(policy, &outcome))),
            Err(err) => self.store_failed(policy, &err),
        }
    }

    async fn check_reading(
        &self,
        policy: &str,
        route: &str,
        subject: &Subject,
        read: &str,
    ) -> Result<(Option<LimitState>, Option<Option<i64>>), ApiError> {
        let counted = self.policies.get(policy).filter(|_| self.enabled).and_then(|p| {
            let key = Self::key(p, route, subject)?;
            // One script only when the state's key shares the read key's slot: the user's.
            Self::tagged_for(&key, subject.user?).then_some((p, key))
        });
        let Some((policy, key)) = counted else { return Ok((self.check(policy, route, subject).await?, None)) };
        match self.store.hit_reading(&key, &policy.compiled, read).await {
            Ok((outcome, value)) => Ok((Some(self.decided(policy, &outcome)), value)),
            Err(err) => Ok((self.store_failed(policy, &err)?, None)),
        }
    }

    async fn refund(&self, policy: &str, route: &str, subject: &Subject) {
        let Some(policy) = self.policies.get(policy).filter(|_| self.enabled) else { return };
        let Some(key) = Self::key(policy, route, subject) else { return };
        match self.store.refund(&key, &policy.limit).await {
            Ok(()) => self.store_ok(),
            // Whatever the policy's failure mode: the request is refused anyway.
            Err(err) => drop(self.store_failed(policy, &err)),
        }
    }

    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        client_ip(peer, headers, &self.trusted, self.forwarded_header)
    }

    fn default_policy(&self) -> Option<&str> {
        if self.enabled { self.default_policy.as_deref() } else { None }
    }

    fn has_policy(&self, policy: &str) -> bool {
        self.policies.contains_key(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_tagged_for_exactly_its_user() {
        let (user, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        assert!(RateLimiter::tagged_for(&format!("app:rl:api:{{u:{user}}}"), user));
        assert!(RateLimiter::tagged_for(&format!("app:rl:api:0a1b2c3d:{{u:{user}}}"), user), "route-scoped");
        assert!(!RateLimiter::tagged_for(&format!("app:rl:api:{{u:{other}}}"), user), "another user's");
        assert!(!RateLimiter::tagged_for(&format!("app:rl:api:{{ip:1.2.3.4|{user}}}"), user), "not the user tag");
        assert!(!RateLimiter::tagged_for("app:rl:api:{ip:1.2.3.4}", user));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| address_key(s.parse().expect("an address"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
    }
}
