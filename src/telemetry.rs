//! Logging: human-readable lines in development, one JSON object per line in production.
//! Every line logged while serving a request carries that request's `request_id` (from the
//! request span opened by the HTTP stack).

use std::io::IsTerminal;

use app_core::config::{LogConfig, Profile};
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `RUST_LOG` wins over `log.level`. Safe to call twice (the
/// second call is ignored), so tests can call it freely.
pub fn init(log: &LogConfig, profile: Profile) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let result = if log.json(profile) {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .with_target(true)
            .try_init()
    } else {
        fmt().with_env_filter(filter).with_target(true).with_ansi(std::io::stdout().is_terminal()).try_init()
    };
    // Already installed (a second app in the same test process): keep the first.
    let _ = result;
}
