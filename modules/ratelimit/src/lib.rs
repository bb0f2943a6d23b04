//! The ratelimit module: named policies from config, evaluated by the throttle guard.
//!
//! - [`RateLimiter`] implements `core`'s `Throttler` port: it builds the subject a policy
//!   counts (client address behind trusted proxies, user, the account a login names), the
//!   single-slot key, and decides with GCRA in the [`RateLimitStore`](store::RateLimitStore)
//!   (Redis Lua, one round trip, server clock; or memory). When the store is down, each policy
//!   fails open or closed as configured, with one warning per outage and a metric.
//! - `RateLimitApi`: the admin routes to read and reset a subject's state.
//!
//! Depends on `core` and `redis`; feature modules never depend on it (they name policies in
//! `core`'s [`ThrottleRule`](app_core::throttle::ThrottleRule)s).

mod api;
mod client_ip;
mod config;
mod module;
mod service;
pub mod store;

pub use api::RateLimitApi;
pub use config::{FailureMode, ForwardedHeader, PolicyConfig, RateLimitConfig, Scope, SubjectKind};
pub use module::{
    RateLimitContainer, RateLimitModule, RateLimitStoreBinding, RateLimiterComponent, RateLimiterParams, RateLimits,
};
pub use service::RateLimiter;
