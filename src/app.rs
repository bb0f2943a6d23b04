//! The one way to build and run the app: `main` and the tests both go through
//! [`Application::build`] and [`Application::run_until_stopped`].

use std::{io, net::SocketAddr, time::Duration};

use std::sync::Arc;

use app_core::metrics::{HttpMetrics, Metrics};
use app_database::{Database, DbError};
use app_jobs::{JobsService, Workers};
use app_redis::{Redis, RedisError, SharedState};
use futures::future::BoxFuture;
use poem::{
    Server,
    listener::{Acceptor, AcceptorExt, BoxAcceptor, Listener, TcpListener},
};
use shaku::HasComponent;

use crate::{
    config::AppConfig,
    module::{AppModule, Overrides, build_modules},
    routes,
};

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Redis could not be configured (connecting happens in the background and never fails start-up).
    #[error("{0}")]
    Redis(#[from] RedisError),
    /// The database could not be opened or migrated.
    #[error("{0}")]
    Database(#[from] DbError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
}

/// Runs the server on the acceptor until the signal resolves, with the drain timeout.
type Serve =
    Box<dyn FnOnce(BoxAcceptor, BoxFuture<'static, ()>, Duration) -> BoxFuture<'static, io::Result<()>> + Send>;

/// Where shared state and the cache live, decided at start-up.
#[derive(Clone, Debug, Default)]
pub struct Backends {
    /// Sessions, rate limits, locks, jobs: Redis or memory.
    pub state: SharedState,
    /// The cache: the separate cache Redis (`cache.redis_url`), else the same as `state`.
    pub cache: SharedState,
    /// Whether `cache` is a client of its own (closed separately).
    separate_cache: bool,
}

impl Backends {
    /// One backend for everything.
    pub fn single(state: SharedState) -> Self {
        Self { cache: state.clone(), state, separate_cache: false }
    }

    /// Connects (in the background) what the configuration names.
    pub fn connect(config: &AppConfig) -> Result<Self, StartError> {
        let state = connect_shared_state(config)?;
        let Some(url) = config.cache.separate_url() else { return Ok(Self::single(state)) };
        let cache_config = app_redis::RedisConfig { url: Some(url.to_owned()), host: None, ..config.redis.clone() };
        let cache = SharedState::Redis(Redis::connect(&cache_config)?);
        tracing::info!("the cache uses its own Redis (cache.redis_url)");
        Ok(Self { state, cache, separate_cache: true })
    }

    /// Closes the Redis clients.
    pub async fn close(&self) {
        if let Some(redis) = self.state.redis() {
            redis.close().await;
        }
        if self.separate_cache
            && let Some(redis) = self.cache.redis()
        {
            redis.close().await;
        }
    }
}

/// A built application: listening, not yet serving.
pub struct Application {
    acceptor: BoxAcceptor,
    addr: SocketAddr,
    serve: Serve,
    module: Arc<AppModule>,
    backends: Backends,
    database: Database,
    metrics: Metrics,
    shutdown_timeout: Duration,
    run_workers: bool,
}

impl Application {
    /// Connects the resources, builds the modules, and binds the listener.
    pub async fn build(config: AppConfig) -> Result<Application, StartError> {
        Self::build_with(config, Overrides::default()).await
    }

    /// As [`build`](Self::build), with component overrides (tests).
    pub async fn build_with(config: AppConfig, overrides: Overrides) -> Result<Application, StartError> {
        let backends = Backends::connect(&config)?;
        // The dummy password hash (for logins with an unknown email) is made off the hot path.
        tokio::task::spawn_blocking(app_auth::password::warm_up);
        let database = open_database(&config).await?;
        let metrics = Metrics::new();
        let http_metrics = HttpMetrics::new(&metrics);
        let module = build_modules(&config, &backends, database.clone(), metrics.clone(), overrides);
        let endpoint = routes::routes(&module, &config, &backends.state, http_metrics);
        // The server boxes the endpoint once itself; keeping the concrete type here (inside a
        // closure) avoids boxing every request's future twice.
        let serve: Serve = Box::new(move |acceptor, signal, timeout| {
            Box::pin(async move {
                Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(endpoint, signal, Some(timeout)).await
            })
        });

        let addr = format!("{}:{}", config.server.bind_host(config.profile), config.server.port);
        let acceptor = TcpListener::bind(addr.clone())
            .into_acceptor()
            .await
            .map_err(|source| StartError::Bind { addr: addr.clone(), source })?;
        let local = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .ok_or_else(|| StartError::Bind { addr, source: io::Error::other("no local address") })?;
        Ok(Application {
            acceptor: acceptor.boxed(),
            addr: local,
            serve,
            module,
            backends,
            database,
            metrics,
            shutdown_timeout: config.server.shutdown_timeout,
            run_workers: config.jobs.workers,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where shared state and the cache live.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The composed modules (tests resolve services from it).
    pub fn module(&self) -> Arc<AppModule> {
        self.module.clone()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// within `server.shutdown_timeout`, and closes Redis and the database last.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let Application { acceptor, serve, backends, database, shutdown_timeout, addr, module, metrics, run_workers } =
            self;
        let jobs: Arc<JobsService> = module.resolve();
        let workers = run_workers.then(|| start_workers(&module, &metrics));
        tracing::info!(%addr, "serving");
        let streams = jobs.clone();
        let shutdown = async move {
            shutdown.await;
            // Open event streams end now, so they do not hold the drain for its whole timeout.
            streams.end_streams();
        };
        let result = serve(acceptor, Box::pin(shutdown), shutdown_timeout).await;
        if let Some(workers) = workers {
            workers.stop().await;
        }
        backends.close().await;
        database.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Starts the job workers over the module's store and job types.
fn start_workers(module: &AppModule, metrics: &Metrics) -> Workers {
    let jobs: Arc<JobsService> = module.resolve();
    Workers::start(jobs.store().clone(), jobs.registry(), jobs.config().clone(), metrics)
}

/// `app worker`: runs the job workers alone (no HTTP server) until `shutdown` resolves; then
/// lets running jobs finish within `jobs.shutdown_timeout` (or hands them back) and closes Redis
/// and the database.
pub async fn run_workers(config: AppConfig, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    if !config.redis.is_configured() {
        return Err(StartError::Redis(RedisError::Config(
            "`app worker` needs Redis (REDIS_URL): with the in-memory backend, jobs run inside `app serve`".into(),
        )));
    }
    let backends = Backends::connect(&config)?;
    let database = open_database(&config).await?;
    let metrics = Metrics::new();
    let module = build_modules(&config, &backends, database.clone(), metrics.clone(), Overrides::default());
    let workers = start_workers(&module, &metrics);
    shutdown.await;
    workers.stop().await;
    backends.close().await;
    database.close().await;
    Ok(())
}

pub(crate) fn connect_shared_state(config: &AppConfig) -> Result<SharedState, StartError> {
    if !config.redis.is_configured() {
        tracing::warn!(
            "shared state is in memory: sessions, rate limits, locks and jobs are per-instance and lost on \
             restart; set REDIS_URL to share them across instances"
        );
        return Ok(SharedState::Memory);
    }
    let redis = Redis::connect(&config.redis)?;
    Ok(SharedState::Redis(redis))
}

pub(crate) async fn open_database(config: &AppConfig) -> Result<Database, StartError> {
    let database = Database::connect(&config.database).await?;
    if config.database.migrate_on_start {
        database.migrate().await?;
    }
    tracing::info!(backend = database.backend().name(), "database ready");
    Ok(database)
}

/// A future that resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this
/// is called (call it inside the runtime, before the slow start-up work), so a signal that
/// arrives while the app is still starting is not lost to the default action.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => tracing::info!("SIGINT received; shutting down"),
                () = wait(terminate) => tracing::info!("SIGTERM received; shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received; shutting down");
    }
}
