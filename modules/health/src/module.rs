//! The health module: `/health/live`, `/health/ready` over every module's readiness checks, and
//! `/metrics`.

use app_core::{Context, Controller, Module, ModuleError, config::Section};
use async_trait::async_trait;
use shaku::module;

use crate::{HealthApi, HealthConfig, HealthServiceImpl, HealthServiceImplParameters};

module! {
    pub HealthContainer {
        components = [HealthServiceImpl],
        providers = []
    }
}

/// Liveness, readiness (the checks the app's modules contribute) and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthModule;

#[async_trait]
impl Module for HealthModule {
    fn name(&self) -> &'static str {
        "health"
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<HealthConfig>())
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let params = HealthServiceImplParameters {
            checks: ctx.readiness_checks(),
            metrics: ctx.metrics().clone(),
            check_timeout: ctx.config::<HealthConfig>().check_timeout,
        };
        let container =
            ctx.container(HealthContainer::builder().with_component_parameters::<HealthServiceImpl>(params));
        ctx.controller(Controller::new(HealthApi::new(&*container)));
        // Readiness takes an optional bearer token (an admin's sees the details).
        ctx.patch_spec(|spec| {
            if let Some(ready) = spec.pointer_mut("/paths/~1health~1ready/get") {
                ready["security"] = serde_json::json!([{}, { "bearer": [] }]);
            }
        });
        Ok(())
    }
}
