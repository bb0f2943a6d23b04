//! The readiness report, from the checks every module contributes.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use app_core::{
    metrics::Metrics,
    module::Collected,
    readiness::{Check, CheckStatus, ReadinessCheck},
};
use async_trait::async_trait;
use shaku::{Component, Interface};

/// The readiness report.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// `ok` when every check passed, else `down`.
    pub status: CheckStatus,
    /// Each dependency's check, by name (`redis`, `database`, and any a module adds).
    pub checks: BTreeMap<String, Check>,
    /// The names of the failing checks.
    pub failing: Vec<String>,
}

/// The health service.
#[async_trait]
pub trait HealthService: Interface {
    /// Asks every check, concurrently, each bounded by the check timeout.
    async fn readiness(&self) -> Readiness;

    /// The Prometheus text exposition.
    fn metrics(&self) -> String;
}

/// Asks the checks the app's modules contribute.
#[derive(Component)]
#[shaku(interface = HealthService)]
pub struct HealthServiceImpl {
    /// Every module's readiness checks (filled once the app is built).
    checks: Collected<Arc<dyn ReadinessCheck>>,
    /// The app's metrics registry.
    metrics: Metrics,
    /// Longest a check may take.
    #[shaku(default = crate::HealthConfig::default().check_timeout)]
    check_timeout: Duration,
}

impl HealthServiceImpl {
    async fn run(&self, check: &dyn ReadinessCheck) -> (String, Check) {
        let result = match tokio::time::timeout(self.check_timeout, check.check()).await {
            Ok(result) => result,
            Err(_) => Check::down(check.name(), "timed out"),
        };
        (check.name().to_owned(), result)
    }
}

#[async_trait]
impl HealthService for HealthServiceImpl {
    async fn readiness(&self) -> Readiness {
        let checks: BTreeMap<String, Check> =
            futures::future::join_all(self.checks.get().iter().map(|c| self.run(c.as_ref())))
                .await
                .into_iter()
                .collect();
        let failing: Vec<String> =
            checks.iter().filter(|(_, c)| c.status == CheckStatus::Down).map(|(name, _)| name.clone()).collect();
        Readiness { status: if failing.is_empty() { CheckStatus::Ok } else { CheckStatus::Down }, checks, failing }
    }

    fn metrics(&self) -> String {
        self.metrics.encode()
    }
}
