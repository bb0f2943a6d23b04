//! `spawn_app()`: the app built exactly as `main` builds it, on port 0, with its own key prefix
//! and database, and a client with one method per endpoint.

pub mod auth;
pub mod jobs;
pub mod library;

use std::{net::SocketAddr, sync::Once, time::Duration};

use app::Application;
use app_core::{
    Module,
    config::Config,
    module::{ModuleSet, Values},
    testing::{RedisServer, TestDatabase, unique_prefix},
};
use tokio::{sync::oneshot, task::JoinHandle};

/// Where shared state lives for a test app.
pub enum Backend {
    /// The per-binary shared `redis-server`.
    SharedRedis,
    /// A Redis URL (a test's own server).
    Redis(String),
    /// The in-process memory backend.
    Memory,
}

/// A change to the app's builder (component overrides).
type Customize = Box<dyn FnOnce(app::AppBuilder) -> app::AppBuilder + Send>;

/// Builds a test app.
pub struct AppBuilder {
    backend: Backend,
    database: Option<TestDatabase>,
    config: Box<dyn FnOnce(&mut Config) + Send>,
    modules: ModuleSet,
    customize: Vec<Customize>,
}

/// Starts building an app of the app's modules on the shared Redis and a fresh SQLite database.
pub fn app() -> AppBuilder {
    AppBuilder {
        backend: Backend::SharedRedis,
        database: None,
        config: Box::new(|_| {}),
        modules: app::modules(),
        customize: Vec::new(),
    }
}

/// Spawns the default app.
pub async fn spawn_app() -> TestApp {
    app().spawn().await
}

impl AppBuilder {
    /// Chooses the shared-state backend.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Uses this database.
    pub fn database(mut self, database: TestDatabase) -> Self {
        self.database = Some(database);
        self
    }

    /// Adjusts the configuration (after any earlier adjustments).
    pub fn config(mut self, f: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        let earlier = std::mem::replace(&mut self.config, Box::new(|_| {}));
        self.config = Box::new(move |c| {
            earlier(c);
            f(c);
        });
        self
    }

    /// A second instance of `other`: the same Redis key prefix and database (and secrets).
    #[allow(dead_code)]
    pub fn instance_of(self, other: &TestApp) -> Self {
        let (prefix, url) = (other.prefix.clone(), other.database_url.clone());
        self.config(move |c| {
            c.get_mut::<app_redis::RedisConfig>().key_prefix = prefix;
            c.get_mut::<app_database::DatabaseConfig>().url = url;
        })
    }

    /// Adds a module (and what it imports) to the app.
    #[allow(dead_code)]
    pub fn module(mut self, module: impl Module) -> Self {
        self.modules = self.modules.with(module);
        self
    }

    /// Changes container `M`'s builder before it is built (component overrides).
    #[allow(dead_code)]
    pub fn customize<M: shaku::Module>(
        mut self,
        f: impl FnOnce(shaku::ModuleBuilder<M>) -> shaku::ModuleBuilder<M> + Send + 'static,
    ) -> Self {
        self.customize.push(Box::new(move |builder| builder.customize(f)));
        self
    }

    /// Builds and starts the app; it stops when the test says so ([`TestApp::shutdown`]).
    pub async fn spawn(self) -> TestApp {
        let (stop, stopped) = oneshot::channel::<()>();
        let mut app = self
            .spawn_until(async {
                let _ = stopped.await;
            })
            .await;
        app.stop = Some(stop);
        app
    }

    /// Builds and starts the app; it stops when `shutdown` resolves (a real signal, say).
    pub async fn spawn_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> TestApp {
        init_logging();
        let database = self.database.unwrap_or_else(TestDatabase::sqlite);
        let mut config = Config::defaults(&self.modules.sections());
        config.get_mut::<app_core::config::ServerConfig>().host = Some("127.0.0.1".into());
        config.get_mut::<app_core::config::ServerConfig>().port = 0;
        config.get_mut::<app_core::config::ServerConfig>().shutdown_timeout = Duration::from_secs(5);
        config.get_mut::<app_database::DatabaseConfig>().url = database.url().to_owned();
        config.get_mut::<app_redis::RedisConfig>().key_prefix = unique_prefix();
        config.get_mut::<app_redis::RedisConfig>().command_timeout = Duration::from_millis(750);
        config.get_mut::<app_redis::RedisConfig>().connect_timeout = Duration::from_millis(500);
        config.get_mut::<app_redis::RedisConfig>().unresponsive_timeout = Duration::from_secs(1);
        config.get_mut::<app_redis::RedisConfig>().reconnect_max_delay = Duration::from_millis(250);
        config.get_mut::<app_health::HealthConfig>().check_timeout = Duration::from_secs(1);
        let shared = matches!(self.backend, Backend::SharedRedis);
        config.get_mut::<app_redis::RedisConfig>().url = match self.backend {
            Backend::SharedRedis => Some(RedisServer::shared().url()),
            Backend::Redis(url) => Some(url),
            Backend::Memory => None,
        };
        config.finish();
        // Tests log in and refresh far more often than people do; the rate-limit tests set
        // their own policies.
        for policy in config.get_mut::<app_ratelimit::RateLimitConfig>().policies.values_mut() {
            policy.limit = 10_000;
        }
        (self.config)(&mut config);
        config.validate().expect("the test configuration is valid");
        let prefix = config.get_mut::<app_redis::RedisConfig>().key_prefix.clone();

        let mut builder = Application::builder(self.modules, config);
        for customize in self.customize {
            builder = customize(builder);
        }
        let app = builder.build().await.expect("the app builds");
        let values = app.values();
        // On the shared server (always up), start once every pooled connection is: a test's
        // first requests must not meet a half-connected client.
        if shared && let Some(redis) = values.get::<app_redis::SharedState>().and_then(|s| s.redis().cloned()) {
            assert!(redis.wait_connected(Duration::from_secs(5)).await, "the shared redis-server answers");
        }
        let addr = app.addr();
        let handle = tokio::spawn(app.run_until_stopped(shutdown));
        TestApp {
            database_url: database.url().to_owned(),
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
            stop: None,
            handle: Some(handle),
            values,
            prefix,
            _database: database,
        }
    }
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            app::telemetry::init(&app_core::config::LogConfig::default(), app_core::config::Profile::Development);
        }
    });
}

/// A running app and a client for it.
pub struct TestApp {
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The raw client, for requests the typed methods do not cover.
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    /// What the modules made (their containers).
    #[allow(dead_code)]
    pub values: Values,
    /// This app's Redis key prefix.
    #[allow(dead_code)]
    pub prefix: String,
    /// This app's database.
    #[allow(dead_code)]
    pub database_url: String,
    _database: TestDatabase,
}

impl TestApp {
    /// Container `C` of one of the app's modules.
    #[allow(dead_code)]
    pub fn container<C: std::any::Any + Send + Sync>(&self) -> std::sync::Arc<C> {
        self.values.get::<C>().expect("the app has this container")
    }

    /// `GET /health/live`.
    pub async fn live(&self) -> reqwest::Response {
        self.get("/health/live").await
    }

    /// `GET /health/ready`.
    pub async fn ready(&self) -> reqwest::Response {
        self.get("/health/ready").await
    }

    /// `GET /health/ready` with a bearer token (an admin's sees the checks' details).
    pub async fn ready_as(&self, token: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, "/health/ready").bearer_auth(token).send().await.expect("request sent")
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("metrics text")
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> reqwest::Response {
        self.get("/openapi.json").await
    }

    /// `GET /docs`.
    pub async fn docs(&self) -> reqwest::Response {
        self.get("/docs").await
    }

    /// `GET <path>`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path).send().await.expect("request sent")
    }

    /// A request to `<path>` to finish and send.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Sends the shutdown signal and waits for the server to stop.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.stop().await
    }

    /// Stops the server and waits for it, keeping its database (for a next instance to read).
    pub async fn stop(&mut self) -> std::io::Result<()> {
        self.signal_shutdown();
        self.stopped().await
    }

    /// Waits for the server to stop (after its shutdown future resolved).
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        let handle = self.handle.take().expect("running");
        tokio::time::timeout(Duration::from_secs(15), handle).await.expect("stops in time").expect("server task")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

/// Asserts a problem+json answer and returns its body.
pub async fn assert_problem(resp: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["requestId"], id.as_str(), "{body}");
    body
}
