//! `[health]`: readiness checks.

use std::time::Duration;

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Validate};
use serde::{Deserialize, Serialize};

/// `[health]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Longest a readiness check may take before it counts as down. Keep it below the load
    /// balancer's probe timeout.
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { check_timeout: Duration::from_secs(2) }
    }
}

impl ConfigSection for HealthConfig {
    const KEY: &'static str = "health";

    fn rows(&self) -> Vec<Row> {
        vec![Row::new("health.check_timeout", "longest a readiness check may take")]
    }
}

impl Validate for HealthConfig {
    fn validate(&self, _: Profile) -> Result<(), ConfigIssue> {
        if self.check_timeout.is_zero() {
            return Err(ConfigIssue::new("health.check_timeout", "must be longer than 0s"));
        }
        Ok(())
    }
}
