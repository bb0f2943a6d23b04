//! The jobs module: the store binding, the service, the workers' lifecycle, and the routes. It
//! knows no job type: the modules that own the work register theirs in its [`JobRegistry`].

use std::sync::{Arc, Mutex};

use app_core::{Context, Controller, Lifecycle, Mode, Module, ModuleError, config::Section};
use app_redis::{RedisModule, SharedState};
use async_trait::async_trait;
use shaku::{HasComponent, module};

use crate::{
    JobRegistry, JobsApi, JobsConfig, JobsService, QueuesApi, Retention, Workers,
    store::{JobStore, MemoryJobStore, RedisJobStore},
};

app_redis::port_binding! {
    /// Binds [`JobStore`] to the adapter of the backend chosen at start-up.
    JobStoreBinding: dyn JobStore, params(retention: Retention) {
        memory => MemoryJobStore::new(retention),
        redis(r) => RedisJobStore::new(r, retention),
    }
}

/// The service's parameters.
#[derive(Debug, Clone, Default)]
pub struct JobsServiceParams {
    /// `[jobs]`.
    pub config: JobsConfig,
    /// The job types (shared: registered while the app is built).
    pub registry: JobRegistry,
}

app_core::component! {
    /// The [`JobsService`] over the bound store.
    pub JobsServiceComponent: JobsService,
    inject(store: dyn JobStore),
    params(p: JobsServiceParams) => Box::new(JobsService::new(store, p.registry, p.config))
}

module! {
    pub JobsContainer {
        components = [JobStoreBinding, JobsServiceComponent],
        providers = []
    }
}

/// Background jobs that survive restarts, followed live. Provides the [`JobRegistry`] that
/// modules importing this one register their job types in; runs the workers in `app serve`
/// (`jobs.workers`) and in `app worker`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobsModule;

#[async_trait]
impl Module for JobsModule {
    fn name(&self) -> &'static str {
        "jobs"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(RedisModule)]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<JobsConfig>())
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let config = ctx.config::<JobsConfig>().clone();
        let state = (*ctx.get::<SharedState>()?).clone();
        let registry = JobRegistry::new();
        let store = app_redis::Bound { state: state.clone(), params: config.retention() };
        let container = ctx.container(
            JobsContainer::builder()
                .with_component_parameters::<JobStoreBinding>(store)
                .with_component_parameters::<JobsServiceComponent>(JobsServiceParams {
                    config: config.clone(),
                    registry: registry.clone(),
                }),
        );
        let documented = registry.clone();
        ctx.patch_spec(move |spec| crate::api::document_job_types(spec, &documented.docs()));
        ctx.provide(registry);
        let service: Arc<JobsService> = container.resolve();
        ctx.controller(
            Controller::new(JobsApi::new(service.clone(), config.stream_heartbeat)).throttled(crate::api::RULES),
        );
        ctx.controller(Controller::new(QueuesApi::new(service.clone())));
        ctx.lifecycle(JobsLifecycle { service, state, metrics: ctx.metrics().clone(), workers: Mutex::new(None) });
        Ok(())
    }
}

/// Checks the queue settings against the registered types, runs the workers, ends the event
/// streams at the shutdown signal, and stops the workers after the server.
struct JobsLifecycle {
    service: Arc<JobsService>,
    state: SharedState,
    metrics: app_core::metrics::Metrics,
    workers: Mutex<Option<Workers>>,
}

#[async_trait]
impl Lifecycle for JobsLifecycle {
    async fn start(&self, mode: Mode) -> Result<(), ModuleError> {
        let config = self.service.config();
        let queues = self.service.registry().queues();
        if let Some(unknown) = config.queues.keys().find(|q| !queues.contains(q)) {
            return Err(ModuleError::new(format!(
                "`jobs.queues.{unknown}` configures a queue no job type has (queues: {})",
                queues.join(", ")
            )));
        }
        let run = match mode {
            Mode::Serve => config.workers,
            Mode::Worker if self.state.redis().is_none() => {
                return Err(ModuleError::new(
                    "`app worker` needs Redis (REDIS_URL): with the in-memory backend, jobs run inside `app serve`",
                ));
            }
            Mode::Worker => true,
        };
        if run {
            let workers =
                Workers::start(self.service.store().clone(), self.service.registry(), config.clone(), &self.metrics);
            *self.workers.lock().unwrap_or_else(|p| p.into_inner()) = Some(workers);
        }
        Ok(())
    }

    fn shutting_down(&self) {
        // Open event streams end now, so they do not hold the drain for its whole timeout.
        self.service.end_streams();
    }

    async fn stop(&self) {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(workers) = workers {
            workers.stop().await;
        }
    }
}
