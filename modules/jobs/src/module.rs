//! The JobsModule: the store binding, the job types and the service.

use std::sync::Arc;

use app_library::{LibraryModule, LibraryService};
use app_redis::SharedState;
use shaku::{Component, HasComponent, Module, ModuleBuildContext, module};

use crate::{
    JobHandler, JobRegistry, JobsConfig, JobsService, Retention,
    store::{JobStore, MemoryJobStore, RedisJobStore},
    types::{LibraryExport, LibraryImport},
};

/// The store binding's parameters.
#[derive(Debug, Clone, Default)]
pub struct JobStoreParams {
    /// Memory or Redis.
    pub state: SharedState,
    /// How finished jobs are kept.
    pub retention: Retention,
}

/// Binds [`JobStore`] to the adapter of the backend chosen at start-up.
pub struct JobStoreBinding;

impl<M: Module> Component<M> for JobStoreBinding {
    type Interface = dyn JobStore;
    type Parameters = JobStoreParams;

    fn build(_: &mut ModuleBuildContext<M>, params: JobStoreParams) -> Box<dyn JobStore> {
        match params.state {
            SharedState::Memory => Box::new(MemoryJobStore::new(params.retention)),
            SharedState::Redis(redis) => Box::new(RedisJobStore::new(redis, params.retention)),
        }
    }
}

/// Job types registered on top of the built-in ones (tests add their own here).
#[derive(Clone, Default)]
pub struct ExtraJobTypes(pub Vec<Arc<dyn JobHandler>>);

impl std::fmt::Debug for ExtraJobTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|h| h.kind())).finish()
    }
}

/// Builds the [`JobRegistry`]: every job type, one line each.
pub struct JobRegistryComponent;

impl<M: Module + HasComponent<dyn LibraryService>> Component<M> for JobRegistryComponent {
    type Interface = JobRegistry;
    type Parameters = ExtraJobTypes;

    fn build(ctx: &mut ModuleBuildContext<M>, extra: ExtraJobTypes) -> Box<JobRegistry> {
        let library: Arc<dyn LibraryService> = M::build_component(ctx);
        let mut registry = JobRegistry::new();
        registry.register(LibraryImport::new(library.clone()));
        registry.register(LibraryExport::new(library));
        for handler in extra.0 {
            registry.register_shared(handler);
        }
        Box::new(registry)
    }
}

/// The service's parameters.
#[derive(Debug, Clone, Default)]
pub struct JobsServiceParams {
    /// `[jobs]`.
    pub config: JobsConfig,
}

/// Builds the [`JobsService`].
pub struct JobsServiceComponent;

impl<M: Module + HasComponent<dyn JobStore> + HasComponent<JobRegistry>> Component<M> for JobsServiceComponent {
    type Interface = JobsService;
    type Parameters = JobsServiceParams;

    fn build(ctx: &mut ModuleBuildContext<M>, params: JobsServiceParams) -> Box<JobsService> {
        let store: Arc<dyn JobStore> = M::build_component(ctx);
        let registry: Arc<JobRegistry> = M::build_component(ctx);
        Box::new(JobsService::new(store, (*registry).clone(), params.config))
    }
}

module! {
    pub JobsModule {
        components = [JobStoreBinding, JobRegistryComponent, JobsServiceComponent],
        providers = [],

        use LibraryModule {
            components = [dyn LibraryService],
            providers = []
        }
    }
}
