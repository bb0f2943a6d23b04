//! The rate-limit module: the store binding, the limiter behind the throttle guard, and the
//! admin routes.

use std::sync::Arc;

use app_core::{
    Context, Controller, Module, ModuleError,
    config::Section,
    metrics::Metrics,
    throttle::{Limiter, Throttler},
};
use app_redis::{RedisModule, SharedState};
use async_trait::async_trait;
use shaku::{HasComponent, Interface, module};

use crate::{
    RateLimitApi, RateLimitConfig, RateLimiter,
    store::{MemoryRateLimitStore, RateLimitStore, RedisRateLimitStore},
};

/// The limiter as the container exports it (the throttle guard's port plus the admin view).
pub trait RateLimits: Interface + Throttler {
    /// The limiter.
    fn limiter(&self) -> &RateLimiter;
}

impl RateLimits for RateLimiter {
    fn limiter(&self) -> &RateLimiter {
        self
    }
}

app_redis::port_binding! {
    /// Binds [`RateLimitStore`] to the adapter of the backend chosen at start-up.
    RateLimitStoreBinding: dyn RateLimitStore {
        memory => MemoryRateLimitStore::new(),
        redis(r) => RedisRateLimitStore::new(r),
    }
}

/// The limiter's parameters.
#[derive(Debug, Clone, Default)]
pub struct RateLimiterParams {
    /// `[rate_limit]`.
    pub config: RateLimitConfig,
    /// Where the decision counters are registered.
    pub metrics: Metrics,
}

app_core::component! {
    /// The [`RateLimiter`] over the bound store.
    pub RateLimiterComponent: dyn RateLimits,
    inject(store: dyn RateLimitStore),
    params(p: RateLimiterParams) => Box::new(RateLimiter::new(&p.config, store, &p.metrics))
}

module! {
    pub RateLimitContainer {
        components = [RateLimitStoreBinding, RateLimiterComponent],
        providers = []
    }
}

/// Named rate-limit policies (`[rate_limit.policies.<name>]`), counted by the throttle guard on
/// every `/api/` request. Provides the guard's [`Limiter`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimitModule;

#[async_trait]
impl Module for RateLimitModule {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(RedisModule)]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<RateLimitConfig>())
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let state = (*ctx.get::<SharedState>()?).clone();
        let params =
            RateLimiterParams { config: ctx.config::<RateLimitConfig>().clone(), metrics: ctx.metrics().clone() };
        let container = ctx.container(
            RateLimitContainer::builder()
                .with_component_parameters::<RateLimitStoreBinding>(state)
                .with_component_parameters::<RateLimiterComponent>(params),
        );
        let limits: Arc<dyn RateLimits> = container.resolve();
        ctx.provide(Limiter(limits));
        ctx.controller(Controller::new(RateLimitApi::new(&*container)));
        Ok(())
    }
}
