//! What operations declare about rate limits, NestJS style (`@Throttle('auth')`,
//! `@SkipThrottle()`), and the table the screen finds those declarations in before routing.
//!
//! A controller declares each rule beside its operations, naming the operation by its
//! `operationId`, and lists its rules in its [`Controller`](crate::module::Controller):
//!
//! ```ignore
//! static SUBMIT_LIMITS: ThrottleRule = ThrottleRule::new("submitJob", &["jobs"]);
//! Controller::new(JobsApi::new(..)).throttled(&[&SUBMIT_LIMITS])
//! ```
//!
//! When the app is built, each rule is placed on its operation's method and path from the
//! spec; a rule naming an operation the app does not have, or a policy the limiter does not
//! define, stops start-up. Every `/api/` request is then counted before routing, in one Redis
//! pipeline with the session check.

use poem::http::Method;
use serde_json::Value;

use super::AccountOf;
use crate::route::OperationRoute;

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
    /// The policy the operation's failures are counted against after the fact, by address
    /// alone (see [`charge_failure`](super::charge_failure)).
    pub failures: Option<&'static str>,
}

impl ThrottleRule {
    /// The operation `operation` passes `policies` on top of the default one (`@Throttle(..)`).
    pub const fn new(operation: &'static str, policies: &'static [&'static str]) -> Self {
        Self { operation, policies, account: None, skip_default: false, failures: None }
    }

    /// The operation `operation` passes no policy, not even the default one (`@SkipThrottle()`).
    pub const fn skip(operation: &'static str) -> Self {
        Self { operation, policies: &[], account: None, skip_default: true, failures: None }
    }

    /// Reads the account a request names with `account_of` (for subjects such as address +
    /// submitted email).
    pub const fn account(mut self, account_of: AccountOf) -> Self {
        self.account = Some(account_of);
        self
    }

    /// Counts the operation's failed requests against `policy`, by address alone, once the
    /// handler knows they failed: for operations whose credential is only verified by the
    /// handler, so what an unverified request claims never keys a count that could refuse
    /// someone else.
    pub const fn failures(mut self, policy: &'static str) -> Self {
        self.failures = Some(policy);
        self
    }

    /// Every policy the rule names.
    pub fn all_policies(&self) -> impl Iterator<Item = &'static str> {
        self.policies.iter().copied().chain(self.failures)
    }
}

/// A rule placed on its operation's method and path.
#[derive(Debug)]
pub struct Entry {
    at: OperationRoute,
    /// The rule.
    pub rule: &'static ThrottleRule,
    /// `METHOD /path/{template}`: what policies scoped per route are counted under.
    pub route: Box<str>,
}

/// The declared rules by method and path, looked up for every `/api/` request before routing.
#[derive(Debug, Default)]
pub struct ThrottleTable {
    /// Few (one per operation that declares a rule), so a scan that compares the method first
    /// costs a request on any other operation a handful of comparisons.
    entries: Vec<Entry>,
}

impl ThrottleTable {
    /// Places each rule on the operation of its `operationId` in `spec` (an OpenAPI document).
    /// A rule naming an operation the document does not have, or one outside `/api/` (which the
    /// screen does not see), is an error.
    pub fn new(spec: &Value, rules: &[&'static ThrottleRule]) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(rules.len());
        for rule in rules {
            let Some((method, path)) = find_operation(spec, rule.operation) else {
                return Err(format!(
                    "a rate-limit rule names the operation `{}`, which the API does not have",
                    rule.operation
                ));
            };
            if !path.starts_with("/api/") {
                return Err(format!(
                    "the rate-limit rule of `{}` is outside `/api/`, where no policy is counted",
                    rule.operation
                ));
            }
            let route = format!("{method} {path}").into();
            entries.push(Entry { at: OperationRoute::new(method, &path), rule, route });
        }
        Ok(Self { entries })
    }

    /// The rule of the operation `method` and `path` reach, if it declares one.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.at.matches(method, path))
    }

    /// The rule declared on the operation `operation_id`, if any.
    pub fn rule_of(&self, operation_id: &str) -> Option<&'static ThrottleRule> {
        self.entries.iter().map(|e| e.rule).find(|r| r.operation == operation_id)
    }

    /// Every placed rule.
    pub fn rules(&self) -> impl Iterator<Item = &'static ThrottleRule> + '_ {
        self.entries.iter().map(|e| e.rule)
    }
}

/// The method and path of the operation `operation_id` in an OpenAPI document.
fn find_operation(spec: &Value, operation_id: &str) -> Option<(Method, String)> {
    crate::route::operations(spec)
        .find(|(_, _, op)| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
        .map(|(method, path, _)| (method, path.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    static OPEN: ThrottleRule = ThrottleRule::new("openSession", &["strict"]);
    static TICKET: ThrottleRule = ThrottleRule::skip("ticket");
    static GONE: ThrottleRule = ThrottleRule::new("gone", &["x"]);

    fn spec() -> Value {
        json!({ "paths": {
            "/api/v1/sessions/open": { "post": { "operationId": "openSession" } },
            "/api/v1/reports/{id}/events/ticket": { "post": { "operationId": "ticket" }, "get": { "operationId": "other" } },
        }})
    }

    #[test]
    fn rules_are_found_by_method_and_path_template() {
        let table = ThrottleTable::new(&spec(), &[&OPEN, &TICKET]).expect("every operation exists");
        let open = table.find(&Method::POST, "/api/v1/sessions/open").expect("openSession");
        assert_eq!(open.rule.operation, "openSession");
        assert_eq!(&*open.route, "POST /api/v1/sessions/open");
        assert!(table.find(&Method::GET, "/api/v1/sessions/open").is_none(), "another method");
        assert!(table.find(&Method::POST, "/api/v1/sessions/open/x").is_none(), "a longer path");
        assert!(table.find(&Method::POST, "/api/v1/sessions").is_none(), "a shorter path");
        let ticket = table.find(&Method::POST, "/api/v1/reports/0193f2c4/events/ticket").expect("a template");
        assert_eq!(&*ticket.route, "POST /api/v1/reports/{id}/events/ticket");
        assert!(table.find(&Method::POST, "/api/v1/reports//events/ticket").is_none(), "an empty parameter");
        assert!(table.find(&Method::GET, "/api/v1/reports/1/events/ticket").is_none());
        assert_eq!(table.rule_of("ticket").map(|r| r.skip_default), Some(true));
    }

    #[test]
    fn a_rule_for_an_operation_the_spec_lacks_is_an_error() {
        let err = ThrottleTable::new(&spec(), &[&OPEN, &GONE]).expect_err("no such operation");
        assert!(err.contains("`gone`"), "{err}");
    }
}
