//! `spawn_app()`: the app built exactly as `main` builds it, on port 0, with its own key prefix
//! and database, and a client with one method per endpoint.

pub mod auth;
pub mod jobs;
pub mod library;

use std::{net::SocketAddr, sync::Once, time::Duration};

use app::{
    AppConfig, Application,
    module::{AppModule, Overrides},
};
use app_core::testing::{RedisServer, TestDatabase, unique_prefix};
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

/// Builds a test app.
pub struct AppBuilder {
    backend: Backend,
    database: Option<TestDatabase>,
    config: Box<dyn FnOnce(&mut AppConfig) + Send>,
    overrides: Overrides,
}

/// Starts building an app on the shared Redis and a fresh SQLite database.
pub fn app() -> AppBuilder {
    AppBuilder {
        backend: Backend::SharedRedis,
        database: None,
        config: Box::new(|_| {}),
        overrides: Overrides::default(),
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
    pub fn config(mut self, f: impl FnOnce(&mut AppConfig) + Send + 'static) -> Self {
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
            c.redis.key_prefix = prefix;
            c.database.url = url;
        })
    }

    /// Overrides components.
    pub fn overrides(mut self, overrides: Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// Builds and starts the app.
    pub async fn spawn(self) -> TestApp {
        init_logging();
        let database = self.database.unwrap_or_else(TestDatabase::sqlite);
        let mut config = AppConfig::default();
        config.server.host = Some("127.0.0.1".into());
        config.server.port = 0;
        config.server.shutdown_timeout = Duration::from_secs(5);
        config.database.url = database.url().to_owned();
        config.redis.key_prefix = unique_prefix();
        config.redis.command_timeout = Duration::from_millis(750);
        config.redis.connect_timeout = Duration::from_millis(500);
        config.redis.unresponsive_timeout = Duration::from_secs(1);
        config.redis.reconnect_max_delay = Duration::from_millis(250);
        config.health.check_timeout = Duration::from_secs(1);
        let shared = matches!(self.backend, Backend::SharedRedis);
        config.redis.url = match self.backend {
            Backend::SharedRedis => Some(RedisServer::shared().url()),
            Backend::Redis(url) => Some(url),
            Backend::Memory => None,
        };
        config.auth.apply_development_defaults();
        // Tests log in and refresh far more often than people do; the rate-limit tests set
        // their own policies.
        for policy in config.rate_limit.policies.values_mut() {
            policy.limit = 10_000;
        }
        (self.config)(&mut config);
        config.validate().expect("the test configuration is valid");
        let prefix = config.redis.key_prefix.clone();

        let app = Application::build_with(config, self.overrides).await.expect("the app builds");
        // On the shared server (always up), start once every pooled connection is: a test's
        // first requests must not meet a half-connected client.
        if shared && let Some(redis) = app.backends().state.redis() {
            assert!(redis.wait_connected(Duration::from_secs(5)).await, "the shared redis-server answers");
        }
        let addr = app.addr();
        let module = app.module();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        TestApp {
            database_url: database.url().to_owned(),
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
            stop: Some(stop),
            handle: Some(handle),
            module,
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
    /// The composed modules.
    #[allow(dead_code)]
    pub module: std::sync::Arc<AppModule>,
    /// This app's Redis key prefix.
    #[allow(dead_code)]
    pub prefix: String,
    /// This app's database.
    #[allow(dead_code)]
    pub database_url: String,
    _database: TestDatabase,
}

impl TestApp {
    /// `GET /health/live`.
    pub async fn live(&self) -> reqwest::Response {
        self.get("/health/live").await
    }

    /// `GET /health/ready`.
    pub async fn ready(&self) -> reqwest::Response {
        self.get("/health/ready").await
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
