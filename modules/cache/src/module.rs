//! The cache module: the store binding, the manager, and the admin route.

use std::sync::Arc;

use app_core::{Context, Controller, Lifecycle, Module, ModuleError, config::Section, versions::UserVersions};
use app_redis::{Redis, RedisConfig, RedisModule, SharedState};
use async_trait::async_trait;
use shaku::module;

use crate::{
    CacheApi, CacheConfig, CacheManager,
    manager::CacheMetrics,
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

app_core::component! {
    /// The manager over the bound store.
    pub CacheManagerComponent: CacheManager,
    inject(store: dyn CacheStore),
    params(p: CacheParams) => {
        let manager = CacheManager::new(store, p.config, p.metrics);
        Box::new(match p.versions {
            Some(versions) => manager.with_copies(versions),
            None => manager,
        })
    }
}

/// The manager's parameters.
#[derive(Clone, Default)]
pub struct CacheParams {
    /// `[cache]`.
    pub config: CacheConfig,
    /// Its counters.
    pub metrics: CacheMetrics,
    /// Users' versions, when the cache is on the shared-state Redis (users' entries are then
    /// kept in process, validated per request).
    pub versions: Option<Arc<UserVersions>>,
}

module! {
    pub CacheContainer {
        components = [CacheStoreBinding, CacheManagerComponent],
        providers = []
    }
}

/// Cache-aside for every module that imports it, on shared state's backend or on a Redis of its
/// own (`cache.redis_url`, which it connects and closes).
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheModule;

#[async_trait]
impl Module for CacheModule {
    fn name(&self) -> &'static str {
        "cache"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(RedisModule)]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<CacheConfig>())
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let config = ctx.config::<CacheConfig>().clone();
        let shared = ctx.get::<SharedState>()?.redis().cloned();
        let versions = shared.filter(|_| config.separate_url().is_none()).map(|redis| {
            let versions = ctx.versions();
            redis.read_user_versions(&versions);
            versions
        });
        let backend = match config.separate_url() {
            Some(url) => {
                let own = RedisConfig { url: Some(url.to_owned()), host: None, ..ctx.config::<RedisConfig>().clone() };
                let redis = Redis::connect(&own).map_err(ModuleError::new)?;
                tracing::info!("the cache uses its own Redis (cache.redis_url)");
                ctx.lifecycle(Close(redis.clone()));
                SharedState::Redis(redis)
            }
            None => (*ctx.get::<SharedState>()?).clone(),
        };
        let metrics = CacheMetrics::register(ctx.metrics());
        let container = ctx.container(
            CacheContainer::builder()
                .with_component_parameters::<CacheStoreBinding>(backend)
                .with_component_parameters::<CacheManagerComponent>(CacheParams { config, metrics, versions }),
        );
        ctx.controller(Controller::new(CacheApi::new(&*container)));
        Ok(())
    }
}

/// Closes the cache's own Redis client.
struct Close(Redis);

#[async_trait]
impl Lifecycle for Close {
    async fn stop(&self) {
        self.0.close().await;
    }
}
