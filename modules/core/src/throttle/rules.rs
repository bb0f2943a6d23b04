//! What operations declare about rate limits, NestJS style (`@Throttle('auth')`,
//! `@SkipThrottle()`), and the table the screen finds those declarations in before routing.
//!
//! An operation declares its rule where it is defined, with [`throttle_policy!`] or
//! [`skip_throttle!`] and the `transform` of its `#[oai]` attribute. The rule names the
//! operation by its `operationId`, so the composition root can place it on its method and path
//! (from the spec) and count every policy of a request before routing, in one Redis pipeline with
//! the session check. The transform stays on the operation as the safety net: should the table
//! ever miss a rule, the operation counts its own policies (correctly, one round trip later).
//!
//! [`throttle_policy!`]: crate::throttle_policy
//! [`skip_throttle!`]: crate::skip_throttle

use std::sync::Mutex;

use poem::http::Method;
use serde_json::Value;

use super::AccountOf;

/// An operation's rate-limit declaration.
#[derive(Debug)]
pub struct ThrottleRule {
    /// The operation's `operationId`: where the table finds its method and path.
    pub operation: &'static str,
    /// The policies counted on top of the default one, in this order.
    pub policies: &'static [&'static str],
    /// Reads the account a request names (for subjects such as address + submitted email).
    pub account: Option<AccountOf>,
    /// Whether the default policy is skipped (`@SkipThrottle()`): with no policies named, the
    /// operation is not rate-limited at all, and its spec says so.
    pub skip_default: bool,
}

/// The rules of the operations built so far. Written as each operation's endpoint is built
/// (once per rule: the transform of a `throttle_policy!` hands in its `static`), read by the
/// composition root after building; so the declaration at the operation is the only one.
static DECLARED: Mutex<Vec<&'static ThrottleRule>> = Mutex::new(Vec::new());

/// Records `rule` (idempotent).
pub(crate) fn declare(rule: &'static ThrottleRule) {
    let mut declared = DECLARED.lock().unwrap_or_else(|p| p.into_inner());
    if !declared.iter().any(|r| std::ptr::eq(*r, rule)) {
        declared.push(rule);
    }
}

/// The rules of every operation whose endpoint has been built in this process.
pub fn declared() -> Vec<&'static ThrottleRule> {
    DECLARED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// One segment of a path template.
#[derive(Debug)]
enum Segment {
    Literal(Box<str>),
    /// `{name}`: any one non-empty segment.
    Param,
}

/// A rule placed on its operation's method and path.
#[derive(Debug)]
pub struct Entry {
    method: Method,
    segments: Box<[Segment]>,
    /// The rule.
    pub rule: &'static ThrottleRule,
    /// `METHOD /path/{template}`: what policies scoped per route are counted under.
    pub route: Box<str>,
}

impl Entry {
    fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method != method {
            return false;
        }
        let path = path.strip_prefix('/').unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut parts = path.split('/');
        self.segments.iter().all(|segment| match (segment, parts.next()) {
            (Segment::Literal(literal), Some(part)) => **literal == *part,
            (Segment::Param, Some(part)) => !part.is_empty(),
            (_, None) => false,
        }) && parts.next().is_none()
    }
}

/// The declared rules by method and path, looked up for every `/api/` request before routing.
#[derive(Debug, Default)]
pub struct ThrottleTable {
    /// Few (one per operation that declares a rule), so a scan that compares the method first
    /// costs a request on any other operation a handful of comparisons.
    entries: Vec<Entry>,
}

impl ThrottleTable {
    /// Places each rule on the operation of its `operationId` in `spec` (an OpenAPI document);
    /// also returns the operation ids the document does not have (their rules are left to the
    /// operations' own transforms).
    pub fn new(spec: &Value, rules: &[&'static ThrottleRule]) -> (Self, Vec<&'static str>) {
        let mut entries = Vec::with_capacity(rules.len());
        let mut missing = Vec::new();
        for rule in rules {
            match find_operation(spec, rule.operation) {
                Some((method, path)) => {
                    let segments = path
                        .trim_matches('/')
                        .split('/')
                        .map(|s| {
                            if s.starts_with('{') && s.ends_with('}') {
                                Segment::Param
                            } else {
                                Segment::Literal(s.into())
                            }
                        })
                        .collect();
                    let route = format!("{method} {path}").into();
                    entries.push(Entry { method, segments, rule, route });
                }
                None => missing.push(rule.operation),
            }
        }
        (Self { entries }, missing)
    }

    /// The rule of the operation `method` and `path` reach, if it declares one.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.matches(method, path))
    }

    /// The rule declared on the operation `operation_id`, if any.
    pub fn rule_of(&self, operation_id: &str) -> Option<&'static ThrottleRule> {
        self.entries.iter().map(|e| e.rule).find(|r| r.operation == operation_id)
    }
}

/// The method and path of the operation `operation_id` in an OpenAPI document.
fn find_operation(spec: &Value, operation_id: &str) -> Option<(Method, String)> {
    spec.get("paths")?.as_object()?.iter().find_map(|(path, item)| {
        item.as_object()?.iter().find_map(|(method, op)| {
            if op.get("operationId")?.as_str()? != operation_id {
                return None;
            }
            Some((Method::from_bytes(method.to_uppercase().as_bytes()).ok()?, path.clone()))
        })
    })
}

/// Declares the rate-limit policies an operation passes on top of the default one, as
/// NestJS's `@Throttle('auth')`:
///
/// ```ignore
/// app_core::throttle_policy!(submit_limits, "submitJob", ["jobs"]);
/// #[oai(path = "/", method = "post", operation_id = "submitJob", transform = "submit_limits")]
/// ```
///
/// `account = f` names a function reading the account the request names (for subjects such
/// as address + submitted email on login).
#[macro_export]
macro_rules! throttle_policy {
    ($name:ident, $operation:literal, [$($policy:literal),+ $(,)?] $(, account = $account:path)?) => {
        fn $name<E: poem::Endpoint>(ep: E) -> $crate::throttle::Throttled<E> {
            static RULE: $crate::throttle::ThrottleRule = $crate::throttle::ThrottleRule {
                operation: $operation,
                policies: &[$($policy),+],
                account: $crate::throttle_policy!(@account $($account)?),
                skip_default: false,
            };
            $crate::throttle::Throttled::new(ep, &RULE)
        }
    };
    (@account) => { None };
    (@account $account:path) => { Some($account) };
}

/// Exempts an operation from the default rate-limit policy, as NestJS's `@SkipThrottle()`:
/// `app_core::skip_throttle!(unthrottled, "logout");` then `#[oai(.., transform = "unthrottled")]`.
#[macro_export]
macro_rules! skip_throttle {
    ($name:ident, $operation:literal) => {
        fn $name<E: poem::Endpoint>(ep: E) -> $crate::throttle::Throttled<E> {
            static RULE: $crate::throttle::ThrottleRule = $crate::throttle::ThrottleRule {
                operation: $operation,
                policies: &[],
                account: None,
                skip_default: true,
            };
            $crate::throttle::Throttled::new(ep, &RULE)
        }
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    static LOGIN: ThrottleRule =
        ThrottleRule { operation: "login", policies: &["auth"], account: None, skip_default: false };
    static TICKET: ThrottleRule =
        ThrottleRule { operation: "ticket", policies: &[], account: None, skip_default: true };
    static GONE: ThrottleRule =
        ThrottleRule { operation: "gone", policies: &["x"], account: None, skip_default: false };

    fn spec() -> Value {
        json!({ "paths": {
            "/api/v1/auth/login": { "post": { "operationId": "login" } },
            "/api/v1/jobs/{id}/events/ticket": { "post": { "operationId": "ticket" }, "get": { "operationId": "other" } },
        }})
    }

    #[test]
    fn rules_are_found_by_method_and_path_template() {
        let (table, missing) = ThrottleTable::new(&spec(), &[&LOGIN, &TICKET]);
        assert!(missing.is_empty(), "{missing:?}");
        let login = table.find(&Method::POST, "/api/v1/auth/login").expect("login");
        assert_eq!(login.rule.operation, "login");
        assert_eq!(&*login.route, "POST /api/v1/auth/login");
        assert!(table.find(&Method::GET, "/api/v1/auth/login").is_none(), "another method");
        assert!(table.find(&Method::POST, "/api/v1/auth/login/x").is_none(), "a longer path");
        assert!(table.find(&Method::POST, "/api/v1/auth").is_none(), "a shorter path");
        let ticket = table.find(&Method::POST, "/api/v1/jobs/0193f2c4/events/ticket").expect("a template");
        assert_eq!(&*ticket.route, "POST /api/v1/jobs/{id}/events/ticket");
        assert!(table.find(&Method::POST, "/api/v1/jobs//events/ticket").is_none(), "an empty parameter");
        assert!(table.find(&Method::GET, "/api/v1/jobs/1/events/ticket").is_none());
        assert_eq!(table.rule_of("ticket").map(|r| r.skip_default), Some(true));
    }

    #[test]
    fn a_rule_for_an_operation_the_spec_lacks_is_named() {
        let (table, missing) = ThrottleTable::new(&spec(), &[&LOGIN, &GONE]);
        assert_eq!(missing, ["gone"]);
        assert!(table.find(&Method::POST, "/api/v1/auth/login").is_some(), "the others are placed");
    }
}
