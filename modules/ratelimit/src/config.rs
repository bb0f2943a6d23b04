//! `[rate_limit]`: named policies, the default policy, trusted proxies.

use std::{collections::BTreeMap, time::Duration};

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Validate, string_list};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What a policy counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The client address.
    Ip,
    /// The authenticated user; anonymous requests are not counted by this policy.
    User,
    /// The user when authenticated, else the client address.
    UserOrIp,
    /// The account a request names: the submitted email (login, register) or the user of a
    /// refresh token. Requests naming none are not counted.
    Account,
    /// The client address together with the account it names (the address alone when none).
    IpAndAccount,
}

/// Which requests share a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One counter per subject across every route the policy guards.
    Global,
    /// One counter per subject and route.
    Route,
}

/// What a policy does while its store (Redis) is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Let requests through (availability first).
    Open,
    /// Refuse them with 503 (protection first).
    Closed,
}

/// The header trusted proxies write the client chain into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=..`.
    Forwarded,
}

/// One named policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Requests allowed per window (also the burst).
    pub limit: u32,
    /// The window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Once exceeded, refuse the subject for this long (independent of the window).
    #[serde(default, with = "humantime_serde")]
    pub block: Option<Duration>,
    /// What requests are counted by.
    pub subject: SubjectKind,
    /// Shared counter across routes, or one per route.
    #[serde(default = "global")]
    pub scope: Scope,
    /// Behaviour while Redis is unavailable.
    #[serde(default = "open")]
    pub on_unavailable: FailureMode,
}

fn global() -> Scope {
    Scope::Global
}

fn open() -> FailureMode {
    FailureMode::Open
}

/// `[rate_limit]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Evaluate policies at all (turning it off is for benchmarks and emergencies).
    pub enabled: bool,
    /// The policy every `/api/v1` request passes; empty for none.
    pub default_policy: String,
    /// Proxies (CIDRs) whose `X-Forwarded-For` / `Forwarded` headers are believed. Empty: the
    /// peer address is the client, and those headers change nothing.
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    /// The header the trusted proxies write (`x-forwarded-for` or `forwarded`); the other is ignored.
    pub forwarded_header: ForwardedHeader,
    /// The policies by name.
    pub policies: BTreeMap<String, PolicyConfig>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let policy = |limit, window, block, subject| PolicyConfig {
            limit,
            window,
            block,
            subject,
            scope: Scope::Global,
            on_unavailable: FailureMode::Open,
        };
        let policies = BTreeMap::from([
            ("api".to_owned(), policy(100, minutes(1), None, SubjectKind::UserOrIp)),
            ("auth".to_owned(), policy(5, minutes(15), Some(minutes(15)), SubjectKind::IpAndAccount)),
            ("auth_account".to_owned(), policy(20, minutes(15), None, SubjectKind::Account)),
            ("auth_ip".to_owned(), policy(100, minutes(15), None, SubjectKind::Ip)),
            ("jobs".to_owned(), policy(20, minutes(60), None, SubjectKind::User)),
        ]);
        Self {
            enabled: true,
            default_policy: "api".into(),
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            policies,
        }
    }
}

impl RateLimitConfig {
    /// The trusted proxy networks (validated).
    pub fn trusted_networks(&self) -> Vec<IpNet> {
        self.trusted_proxies.iter().filter_map(|p| parse_net(p)).collect()
    }
}

/// A CIDR, or a single address (as a /32 or /128).
fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// What each default policy guards, for the README's table.
const GUARDS: &[(&str, &str)] = &[
    ("api", "guards every `/api/v1` request (the default policy)"),
    ("auth", "guards login and register (address + email)"),
    ("auth_account", "guards login and register, by the email alone from any address (bounds address rotation)"),
    (
        "auth_ip",
        "guards login and register by address alone (one address trying many accounts); counts failed refreshes",
    ),
    ("jobs", "guards job submission"),
];

impl ConfigSection for RateLimitConfig {
    const KEY: &'static str = "rate_limit";

    fn rows(&self) -> Vec<Row> {
        let mut rows = vec![
            Row::new("rate_limit.enabled", "evaluate rate-limit policies at all (off: for benchmarks and emergencies)"),
            Row::new("rate_limit.default_policy", "the policy every `/api/v1` request passes; empty for none"),
            Row::new(
                "rate_limit.trusted_proxies",
                "proxies (CIDRs or addresses, comma-separated) whose `X-Forwarded-For` / `Forwarded` are believed; \
                 none: the peer is the client",
            ),
            Row::new(
                "rate_limit.forwarded_header",
                "the header trusted proxies write: `x-forwarded-for` or `forwarded` (RFC 7239); the other is ignored",
            ),
        ];
        for name in self.policies.keys() {
            let key = |field: &str| format!("rate_limit.policies.{name}.{field}");
            let guards = GUARDS.iter().find(|(n, _)| n == name).map_or(String::new(), |(_, g)| format!("; {g}"));
            rows.push(Row::new(
                key("limit"),
                format!(
                    "`{name}`: requests per window (also the burst), 1 to 1,000,000 and at most one per millisecond \
                     of the window{guards}"
                ),
            ));
            rows.push(Row::new(key("window"), format!("`{name}`: the window (at most 30 days)")));
            rows.push(Row::new(
                key("block"),
                format!(
                    "`{name}`: once exceeded, refuse the subject this long (independent of the window; at most 30 days)"
                ),
            ));
            rows.push(Row::new(
                key("subject"),
                format!("`{name}`: counted by `ip`, `user`, `user_or_ip`, `account` or `ip_and_account`"),
            ));
            let scope = if *name == self.default_policy {
                format!(
                    "`{name}`: one counter per subject (`global`) or per subject and route (`route`); the default \
                     policy must be `global` (start-up refuses `route` for it)"
                )
            } else {
                format!("`{name}`: one counter per subject (`global`) or per subject and route (`route`)")
            };
            rows.push(Row::new(key("scope"), scope));
            rows.push(Row::new(
                key("on_unavailable"),
                format!("`{name}`: while Redis is down, let requests through (`open`) or answer 503 (`closed`)"),
            ));
        }
        rows
    }
}

impl Validate for RateLimitConfig {
    fn validate(&self, _: Profile) -> Result<(), ConfigIssue> {
        if let Some(bad) = self.trusted_proxies.iter().find(|p| parse_net(p).is_none()) {
            return Err(ConfigIssue::new(
                "rate_limit.trusted_proxies",
                format!("`{bad}` is not an address or a CIDR (e.g. 10.0.0.0/8)"),
            ));
        }
        if !self.default_policy.is_empty() && !self.policies.contains_key(&self.default_policy) {
            return Err(ConfigIssue::new(
                "rate_limit.default_policy",
                format!("names `{}`, which is not a configured policy", self.default_policy),
            ));
        }
        if let Some(default) = self.policies.get(&self.default_policy)
            && default.scope == Scope::Route
        {
            return Err(ConfigIssue::new(
                format!("rate_limit.policies.{}.scope", self.default_policy),
                "must be `global` for the default policy (it is counted before routing)",
            ));
        }
        for (name, p) in &self.policies {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(ConfigIssue::new(
                    format!("rate_limit.policies.{name}"),
                    "policy names are letters, digits, `_` and `-`",
                ));
            }
            if u128::from(p.limit) > p.window.as_millis() {
                return Err(ConfigIssue::new(
                    format!("rate_limit.policies.{name}.limit"),
                    "must be at most one request per millisecond of `window`",
                ));
            }
            if p.limit == 0 || p.limit > 1_000_000 {
                return Err(ConfigIssue::new(format!("rate_limit.policies.{name}.limit"), "must be 1 to 1000000"));
            }
            if p.window < Duration::from_millis(1) || p.window > MAX_WINDOW {
                return Err(ConfigIssue::new(
                    format!("rate_limit.policies.{name}.window"),
                    "must be longer than 0s and at most 30 days",
                ));
            }
            if p.block.is_some_and(|b| b < Duration::from_millis(1) || b > MAX_WINDOW) {
                return Err(ConfigIssue::new(
                    format!("rate_limit.policies.{name}.block"),
                    "must be longer than 0s and at most 30 days",
                ));
            }
        }
        Ok(())
    }
}

/// The longest window a policy may have (a subject's state is kept for up to two).
pub const MAX_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_proxies_are_named() {
        assert!(RateLimitConfig::default().validate(Profile::Production).is_ok());
        let bad = RateLimitConfig { trusted_proxies: vec!["10.0.0.0/33".into()], ..RateLimitConfig::default() };
        assert_eq!(bad.validate(Profile::Development).unwrap_err().key, "rate_limit.trusted_proxies");
        let ok =
            RateLimitConfig { trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()], ..RateLimitConfig::default() };
        assert_eq!(ok.trusted_networks().len(), 2);
    }

    #[test]
    fn policies_that_cannot_work_are_refused() {
        let mut cfg = RateLimitConfig::default();
        cfg.policies.get_mut("api").unwrap().scope = Scope::Route;
        assert_eq!(cfg.validate(Profile::Development).unwrap_err().key, "rate_limit.policies.api.scope");
        let mut cfg = RateLimitConfig::default();
        cfg.policies.get_mut("auth").unwrap().window = Duration::from_millis(3);
        assert_eq!(cfg.validate(Profile::Development).unwrap_err().key, "rate_limit.policies.auth.limit");
        let mut cfg = RateLimitConfig::default();
        cfg.policies.get_mut("auth").unwrap().block = Some(MAX_WINDOW + Duration::from_secs(1));
        assert_eq!(cfg.validate(Profile::Development).unwrap_err().key, "rate_limit.policies.auth.block");
        let mut cfg = RateLimitConfig::default();
        let api = cfg.policies["api"].clone();
        cfg.policies.insert("bad{tag}".into(), api);
        assert!(cfg.validate(Profile::Development).unwrap_err().message.contains("letters"));
    }
}
