//! The CacheModule: the store binding and the manager.

use std::sync::Arc;

use app_core::metrics::Metrics;
use app_redis::SharedState;
use shaku::{Component, HasComponent, Module, ModuleBuildContext, module};

use crate::{
    CacheConfig, CacheManager,
    store::{CacheStore, MemoryCacheStore, RedisCacheStore},
};

/// Binds [`CacheStore`] to the adapter of the cache's backend: the separate cache Redis, the
/// shared-state Redis, or memory.
pub struct CacheStoreBinding;

impl<M: Module> Component<M> for CacheStoreBinding {
    type Interface = dyn CacheStore;
    type Parameters = SharedState;

    fn build(_: &mut ModuleBuildContext<M>, state: SharedState) -> Box<dyn CacheStore> {
        match state {
            SharedState::Memory => Box::new(MemoryCacheStore::new()),
            SharedState::Redis(redis) => Box::new(RedisCacheStore::new(redis)),
        }
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
