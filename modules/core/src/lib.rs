//! The framework kernel every module builds on, as NestJS's `@nestjs/common` is for its modules.
//!
//! `core` owns what is cross-cutting and knows nothing of any feature:
//! - [`module`]: what a module declares (config section, migrations, error codes, controllers,
//!   rate-limit rules, readiness checks, lifecycle) and the set that resolves and builds an app's modules;
//! - [`config`]: configuration sections (each module declares its own; `server` and `log` are the
//!   framework's), the loader, and the helpers sections use (secrets that never print, lists from
//!   env strings, issues that name a key);
//! - [`problem`]: the RFC 9457 problem+json error type ([`ApiError`]) and the typed status sets
//!   ([`Problems`]) that operations declare, so the spec lists every error status a route returns;
//! - [`guard`]: the bearer and role guards operations declare, and the session-verifier port behind them;
//! - [`throttle`]: the throttle guard (named rate-limit policies on operations, the `Throttler` port, headers);
//! - [`context`]: the per-request context (the request id that appears in responses and log lines);
//! - [`http`]: the middleware stack every route runs behind (request id, access log, metrics,
//!   CORS, body limit, panic catching, turning every error into problem+json);
//! - [`openapi`]: the spec finalizer that declares the framework's own error responses;
//! - [`metrics`]: the Prometheus registry modules register their metrics in;
//! - [`readiness`]: the checks modules contribute to `/health/ready`;
//! - [`versions`]: users' versions, read with the rate-limit count, so in-process copies of a
//!   user's shared state are served only while still current;
//! - [`nullable`]: PATCH fields that may be absent, `null` or a value, documented as nullable;
//! - [`time`]: the one timestamp format of the API (RFC 3339, UTC, `Z`);
//! - [`pagination`]: the `page` / `pageSize` contract of every list;
//! - `testing` (feature `testing`): a real `redis-server` per test binary, a database per test,
//!   and the macro that runs one contract suite against every adapter of a port.
//!
//! Architecture invariant: `core` depends on no other module crate and on no Redis or SQL client,
//! so every module can depend on it without cycles.

pub mod config;
pub mod context;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod module;
pub mod nullable;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod readiness;
pub mod route;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod time;
pub mod versions;

pub use context::RequestId;
pub use guard::{AdminAuth, BearerAuth, Principal, Role};
pub use module::{Context, Controller, Lifecycle, Migration, Mode, Module, ModuleError};
pub use nullable::Nullable;
pub use problem::{ApiError, ErrorCode, FieldError, Problem, Problems};
pub use time::Timestamp;

/// A hash map for lookups on the request path by keys the app itself defines (route paths,
/// policy names): aHash (already in the build) rather than std's SipHash, about 150 to 200
/// instructions less per lookup, and seeded at random per map as std's is.
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
