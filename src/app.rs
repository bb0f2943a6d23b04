//! The one way to build and run the app: `main` and the tests both go through
//! [`Application::builder`] and [`Application::run_until_stopped`].
//!
//! Building resolves the modules, builds them in order (each connects what it owns and builds
//! its container), composes their controllers behind the HTTP surface, binds the listener, and
//! starts the modules' lifecycles. Stopping signals them, drains the server, and stops them in
//! reverse order, so what others use (Redis, the pool) closes last. No feature is named here.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use app_core::{
    config::{Config, ServerConfig},
    http::ConnectionLimits,
    metrics::{Gauge, HttpMetrics, Metrics},
    module::{Customizers, ModuleSet, Values},
    {Lifecycle, Mode, ModuleError},
};
use futures::future::BoxFuture;
use tokio::net::TcpListener;

use crate::routes;

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A module could not be built or started (its name and why).
    #[error("{0}")]
    Module(#[from] ModuleError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
}

/// Runs the server on the listener until the signal resolves, with the drain timeout.
type Serve =
    Box<dyn FnOnce(TcpListener, BoxFuture<'static, ()>, Duration) -> BoxFuture<'static, io::Result<()>> + Send>;

/// The modules' lifecycles, in build order.
type Lifecycles = Vec<(&'static str, Arc<dyn Lifecycle>)>;

/// A built application: listening, its modules started, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    serve: Serve,
    lifecycles: Lifecycles,
    values: Values,
    shutdown_timeout: Duration,
}

/// Builds an [`Application`] from modules and their configuration.
pub struct AppBuilder {
    modules: ModuleSet,
    config: Config,
    customizers: Customizers,
}

impl AppBuilder {
    /// Changes container `M`'s builder before it is built (tests override components).
    pub fn customize<M: shaku::Module>(
        mut self,
        f: impl FnOnce(shaku::ModuleBuilder<M>) -> shaku::ModuleBuilder<M> + Send + 'static,
    ) -> Self {
        self.customizers.add(f);
        self
    }

    /// Builds the modules, composes the HTTP surface, binds the listener and starts the
    /// modules' lifecycles.
    pub async fn build(self) -> Result<Application, StartError> {
        let AppBuilder { modules, config, customizers } = self;
        let config = Arc::new(config);
        let metrics = Metrics::new();
        let http_metrics = HttpMetrics::new(&metrics);
        let open = Gauge::default();
        metrics.register(
            "http_connections_open",
            "Open HTTP connections (at most `server.max_connections`)",
            open.clone(),
        );
        let mut built = modules.build(config.clone(), metrics, customizers).await?;
        let lifecycles = std::mem::take(&mut built.lifecycles);
        let values = built.values();
        let server = config.get::<ServerConfig>().clone();
        let endpoint = match routes::routes(built, &config, http_metrics) {
            Ok(endpoint) => endpoint,
            Err(err) => {
                stop(&lifecycles).await;
                return Err(err.into());
            }
        };
        let limits = ConnectionLimits {
            header_read_timeout: server.header_read_timeout,
            idle_timeout: server.idle_timeout,
            max_connections: server.max_connections,
            threads: server.threads(config.get::<app_redis::RedisConfig>().on_this_machine()),
        };
        tracing::info!(
            header_read_timeout = ?limits.header_read_timeout,
            idle_timeout = ?limits.idle_timeout,
            max_connections = limits.max_connections,
            threads = limits.threads,
            max_body_bytes = server.max_body_bytes,
            "connection bounds"
        );
        // The endpoint keeps its concrete type (inside a closure): no request's future is boxed.
        let serve: Serve = Box::new(move |listener, signal, timeout| {
            Box::pin(app_core::http::serve(listener, endpoint, limits, open, signal, timeout))
        });
        let addr = format!("{}:{}", server.bind_host(config.profile), server.port);
        let bound = match TcpListener::bind(addr.clone()).await {
            Ok(listener) => listener,
            Err(source) => {
                stop(&lifecycles).await;
                return Err(StartError::Bind { addr, source });
            }
        };
        let local = match bound.local_addr() {
            Ok(local) => local,
            Err(source) => {
                stop(&lifecycles).await;
                return Err(StartError::Bind { addr, source });
            }
        };
        start(&lifecycles, Mode::Serve).await?;
        Ok(Application {
            listener: bound,
            addr: local,
            serve,
            lifecycles,
            values,
            shutdown_timeout: server.shutdown_timeout,
        })
    }
}

impl Application {
    /// Starts building the app of `modules` with `config` (loaded for the same modules).
    pub fn builder(modules: ModuleSet, config: Config) -> AppBuilder {
        AppBuilder { modules, config, customizers: Customizers::default() }
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the modules made: their containers and provided values (tests resolve services).
    pub fn values(&self) -> Values {
        self.values.clone()
    }

    /// Serves until `shutdown` resolves; then the modules hear the signal, in-flight requests
    /// finish within `server.shutdown_timeout`, and the modules stop in reverse order.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let Application { listener, serve, lifecycles, shutdown_timeout, addr, .. } = self;
        tracing::info!(%addr, "serving");
        let signalled = lifecycles.clone();
        let shutdown = async move {
            shutdown.await;
            for (_, lifecycle) in &signalled {
                lifecycle.shutting_down();
            }
        };
        let result = serve(listener, Box::pin(shutdown), shutdown_timeout).await;
        stop(&lifecycles).await;
        tracing::info!("stopped");
        result
    }
}

/// Starts every lifecycle in build order; on a failure, stops them all (stopping one that never
/// started is harmless: it closes what its module opened while it was built).
async fn start(lifecycles: &Lifecycles, mode: Mode) -> Result<(), StartError> {
    for (module, lifecycle) in lifecycles {
        if let Err(err) = lifecycle.start(mode).await {
            stop(lifecycles).await;
            let module = if err.module.is_empty() { module } else { err.module };
            return Err(ModuleError { module, message: err.message }.into());
        }
    }
    Ok(())
}

/// Stops every lifecycle, in reverse build order.
async fn stop(lifecycles: &Lifecycles) {
    for (_, lifecycle) in lifecycles.iter().rev() {
        lifecycle.stop().await;
    }
}

/// `app worker`: builds the modules and runs their background work (the job workers) alone,
/// without an HTTP server, until `shutdown` resolves; then stops them in reverse order.
pub async fn run_workers(
    modules: ModuleSet,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let mut built = modules.build(Arc::new(config), Metrics::new(), Customizers::default()).await?;
    let lifecycles = std::mem::take(&mut built.lifecycles);
    start(&lifecycles, Mode::Worker).await?;
    shutdown.await;
    for (_, lifecycle) in &lifecycles {
        lifecycle.shutting_down();
    }
    stop(&lifecycles).await;
    Ok(())
}

/// Builds the modules for a one-off command (accounts): nothing starts; `finish` runs with what
/// they made, then they stop.
pub async fn with_modules<T>(
    modules: ModuleSet,
    config: Config,
    finish: impl AsyncFnOnce(&Values) -> T,
) -> Result<T, StartError> {
    let mut built = modules.build(Arc::new(config), Metrics::new(), Customizers::default()).await?;
    let lifecycles = std::mem::take(&mut built.lifecycles);
    let result = finish(&built.values()).await;
    stop(&lifecycles).await;
    Ok(result)
}

/// As [`with_modules`], handing over the whole built app (the spec).
pub(crate) async fn with_built<T>(
    modules: ModuleSet,
    config: Config,
    finish: impl FnOnce(app_core::module::Built) -> T,
) -> Result<T, StartError> {
    let mut built = modules.build(Arc::new(config), Metrics::new(), Customizers::default()).await?;
    let lifecycles = std::mem::take(&mut built.lifecycles);
    let result = finish(built);
    stop(&lifecycles).await;
    Ok(result)
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
