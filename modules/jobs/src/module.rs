//! The jobs module: the store binding, the service, the workers' lifecycle, and the routes. It
//! knows no job type: the modules that own the work register theirs in its [`JobRegistry`].

use std::sync::{Arc, Mutex};

use app_core::{Context, Controller, Lifecycle, Migration, Mode, Module, ModuleError, config::Section};
use app_database::{DatabaseContainer, DatabaseModule, SqlDatabase};
use app_redis::{RedisModule, SharedState};
use async_trait::async_trait;
use prometheus_client::metrics::gauge::Gauge;
use shaku::{HasComponent, module};
use tokio_util::sync::CancellationToken;

use crate::{
    JobRegistry, JobsApi, JobsConfig, JobsService, QueuesApi, Retention, Workers,
    results::{JobResults, SqlJobResults},
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
    /// The [`JobsService`] over the bound store and the result documents.
    pub JobsServiceComponent: JobsService,
    inject(store: dyn JobStore, results: dyn JobResults),
    params(p: JobsServiceParams) => Box::new(JobsService::new(store, results, p.registry, p.config))
}

module! {
    pub JobsContainer {
        components = [JobStoreBinding, SqlJobResults, JobsServiceComponent],
        providers = [],

        use DatabaseContainer {
            components = [dyn SqlDatabase],
            providers = []
        }
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
        vec![Box::new(RedisModule), Box::new(DatabaseModule)]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<JobsConfig>())
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![
            Migration::new(20261204000002, "job_results", include_str!("../migrations/20261204000002_job_results.sql"))
                .postgres(include_str!("../migrations/20261204000002_job_results.postgres.sql")),
        ]
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let config = ctx.config::<JobsConfig>().clone();
        let idle = ctx.config::<app_core::config::ServerConfig>().idle_timeout;
        if config.stream_heartbeat >= idle {
            return Err(ModuleError::new(format!(
                "`jobs.stream_heartbeat` ({:?}) must be shorter than `server.idle_timeout` ({idle:?}), or idle event \
                 streams would be cut",
                config.stream_heartbeat
            )));
        }
        let state = (*ctx.get::<SharedState>()?).clone();
        let registry = JobRegistry::new();
        let store = app_redis::Bound { state: state.clone(), params: config.retention() };
        let container = ctx.container(
            JobsContainer::builder(ctx.get()?)
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
        let usage = ResultGauges::register(ctx.metrics());
        ctx.lifecycle(JobsLifecycle {
            service,
            state,
            metrics: ctx.metrics().clone(),
            workers: Mutex::new(None),
            usage,
            sweeper: CancellationToken::new(),
        });
        Ok(())
    }
}

/// How often expired result documents are deleted and their usage measured.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What the stored result documents take, on `/metrics`.
#[derive(Clone, Default)]
struct ResultGauges {
    results: Gauge,
    bytes: Gauge,
}

impl ResultGauges {
    fn register(metrics: &app_core::metrics::Metrics) -> Self {
        let this = Self::default();
        metrics.register("jobs_results_stored", "Job result documents kept in the database", this.results.clone());
        metrics.register("jobs_results_stored_bytes", "Bytes of the job result documents kept", this.bytes.clone());
        this
    }
}

/// Checks the queue settings against the registered types, runs the workers and the sweep of
/// expired results, ends the event streams at the shutdown signal, and stops the workers after
/// the server.
struct JobsLifecycle {
    service: Arc<JobsService>,
    state: SharedState,
    metrics: app_core::metrics::Metrics,
    workers: Mutex<Option<Workers>>,
    usage: ResultGauges,
    sweeper: CancellationToken,
}

/// Deletes expired result documents every [`SWEEP_EVERY`] (every instance does; the deletes are
/// idempotent) and measures what is kept.
async fn sweep(results: Arc<dyn JobResults>, usage: ResultGauges, stop: CancellationToken) {
    loop {
        match results.sweep(crate::results::now_ms()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(rows = deleted, "expired job results deleted"),
            Err(err) => tracing::warn!(error = %err, "could not delete expired job results; retrying later"),
        }
        if let Ok(kept) = results.usage().await {
            usage.results.set(i64::try_from(kept.results).unwrap_or(i64::MAX));
            usage.bytes.set(i64::try_from(kept.bytes).unwrap_or(i64::MAX));
        }
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = stop.cancelled() => return,
        }
    }
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
        tracing::info!(
            max_open_per_user = config.max_open_per_user,
            max_result_bytes = config.max_result_bytes,
            retention = ?config.retention,
            keep_completed = config.keep_completed,
            keep_failed = config.keep_failed,
            "job bounds: open jobs per user and type, result size (results in the database, not Redis), retention"
        );
        tokio::spawn(sweep(self.service.results().clone(), self.usage.clone(), self.sweeper.clone()));
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
            let workers = Workers::start(
                self.service.store().clone(),
                self.service.results().clone(),
                self.service.registry(),
                config.clone(),
                &self.metrics,
            );
            *self.workers.lock().unwrap_or_else(|p| p.into_inner()) = Some(workers);
        }
        Ok(())
    }

    fn shutting_down(&self) {
        // Open event streams end now, so they do not hold the drain for its whole timeout.
        self.service.end_streams();
    }

    async fn stop(&self) {
        self.sweeper.cancel();
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(workers) = workers {
            workers.stop().await;
        }
    }
}
