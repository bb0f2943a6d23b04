//! The RateLimitModule: the store binding and the limiter.

use std::sync::Arc;

use app_core::{metrics::Metrics, throttle::Throttler};
use shaku::{Component, HasComponent, Interface, Module, ModuleBuildContext, module};

use crate::{
    RateLimitConfig, RateLimiter,
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

/// Builds the [`RateLimiter`] over the bound store.
pub struct RateLimiterComponent;

impl<M: Module + HasComponent<dyn RateLimitStore>> Component<M> for RateLimiterComponent {
    type Interface = dyn RateLimits;
    type Parameters = RateLimiterParams;

    fn build(ctx: &mut ModuleBuildContext<M>, params: RateLimiterParams) -> Box<dyn RateLimits> {
        let store: Arc<dyn RateLimitStore> = M::build_component(ctx);
        Box::new(RateLimiter::new(&params.config, store, &params.metrics))
    }
}

module! {
    pub RateLimitModule {
        components = [RateLimitStoreBinding, RateLimiterComponent],
        providers = []
    }
}
