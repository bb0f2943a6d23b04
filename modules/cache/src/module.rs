//! The CacheModule: the store binding and the manager.

use std::sync::Arc;

use app_core::metrics::Metrics;
use shaku::{Component, HasComponent, Module, ModuleBuildContext, module};

use crate::{
    CacheConfig, CacheManager,
    store::{CacheStore, MemoryCacheStore, RedisCacheStore},
};

app_redis::port_binding! {
    /// Binds [`CacheStore`] to the adapter of the cache's backend: the separate cache Redis, the
    /// shared-state Redis, or memory.
    CacheStoreBinding: dyn CacheStore {
        memory => MemoryCacheStore::new(),
        redis(r) => RedisCacheStore::new(r),
    }
}

/// The manager's parameters.
#[derive(Debug, Clone, Default)]
pub struct CacheManagerParams {
    /// `[cache]`.
    pub config: CacheConfig,
    /// Where the hit/miss counters are registered.
    pub metrics: Metrics,
}

/// Builds the [`CacheManager`] over the bound store.
pub struct CacheManagerComponent;

impl<M: Module + HasComponent<dyn CacheStore>> Component<M> for CacheManagerComponent {
    type Interface = CacheManager;
    type Parameters = CacheManagerParams;

    fn build(ctx: &mut ModuleBuildContext<M>, params: CacheManagerParams) -> Box<CacheManager> {
        let store: Arc<dyn CacheStore> = M::build_component(ctx);
        Box::new(CacheManager::new(store, params.config, &params.metrics))
    }
}

module! {
    pub CacheModule {
        components = [CacheStoreBinding, CacheManagerComponent],
        providers = []
    }
}
