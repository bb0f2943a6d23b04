//! The managed Redis connection: a pipelining command pool plus a subscriber connection.
//!
//! [`Redis::connect`] never waits for the server: connections are established (and
//! re-established, forever, with capped exponential backoff and jitter) in the background, so the
//! app starts while Redis is down, reports not-ready, and heals when Redis appears. Every command
//! has a finite timeout and the queue of commands waiting for a connection is bounded, so a
//! frozen or absent Redis produces fast errors, never hung requests.
//!
//! fred stays inside this crate: callers see [`Redis`], [`Arg`], [`Reply`] and [`RedisError`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use fred::{
    clients::SubscriberClient,
    interfaces::{EventInterface, PubsubInterface},
    prelude::*,
    types::config::UnresponsiveConfig,
};

use crate::{
    RedisConfig, RedisError,
    batch::Eval,
    pubsub::Hub,
    scripts::{Script, ScriptRegistry},
};

/// A connected (or connecting) Redis client, cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    subscriber: SubscriberClient,
    prefix: String,
    scripts: ScriptRegistry,
    hub: Hub,
    up: AtomicBool,
    command_timeout: Duration,
    coalescer: Arc<crate::batch::Coalescer>,
    /// This Redis's identity among a lane's connections ([`crate::lane`]).
    id: Arc<()>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("prefix", &self.inner.prefix).finish_non_exhaustive()
    }
}

/// A command argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Str(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Str(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<u64> for Arg {
    fn from(v: u64) -> Self {
        Arg::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Bytes(v.to_vec())
    }
}

impl From<Arg> for Value {
    fn from(arg: Arg) -> Self {
        match arg {
            Arg::Int(i) => Value::Integer(i),
            Arg::Str(s) => Value::String(s.into()),
            Arg::Bytes(b) => Value::Bytes(b.into()),
        }
    }
}

/// A reply from Redis (what a Lua script returns, for instance).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `nil` (Lua `false`).
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk or simple string.
    Bytes(Vec<u8>),
    /// A double (RESP3).
    Double(f64),
    /// A boolean (RESP3).
    Bool(bool),
    /// An array.
    Array(Vec<Reply>),
}

impl Reply {
    /// The integer, also from a numeric string.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            Reply::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The string, if the reply is UTF-8 text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Reply::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The elements of an array reply (empty for anything else).
    pub fn into_array(self) -> Vec<Reply> {
        match self {
            Reply::Array(items) => items,
            Reply::Nil => Vec::new(),
            other => vec![other],
        }
    }
}

impl From<Value> for Reply {
    fn from(v: Value) -> Self {
        match v {
            Value::Null | Value::Queued => Reply::Nil,
            Value::Integer(i) => Reply::Int(i),
            Value::Double(d) => Reply::Double(d),
            Value::Boolean(b) => Reply::Bool(b),
            Value::String(s) => Reply::Bytes(s.as_bytes().to_vec()),
            Value::Bytes(b) => Reply::Bytes(b.to_vec()),
            Value::Array(items) => Reply::Array(items.into_iter().map(Reply::from).collect()),
            Value::Map(map) => Reply::Array(
                map.inner()
                    .into_iter()
                    .flat_map(|(k, v)| [Reply::Bytes(k.as_bytes().to_vec()), Reply::from(v)])
                    .collect(),
            ),
        }
    }
}

impl Redis {
    /// Builds the clients and starts connecting in the background; never waits for the server.
    pub fn connect(cfg: &RedisConfig) -> Result<Redis, RedisError> {
        let config = client_config(cfg)?;
        let builder = {
            let mut builder = Builder::from_config(config);
            let mut policy = ReconnectPolicy::new_exponential(
                0, // retry forever
                millis(cfg.reconnect_min_delay),
                millis(cfg.reconnect_max_delay),
                2,
            );
            policy.set_jitter(millis(cfg.reconnect_min_delay).clamp(50, 1000));
            builder
                .set_policy(policy)
                .with_connection_config(|c| {
                    c.connection_timeout = cfg.connect_timeout;
                    c.internal_command_timeout = cfg.command_timeout;
                    c.max_command_buffer_len = cfg.max_command_buffer;
                    // One attempt: a command cut off by a dropped connection fails (callers
                    // degrade or answer 503) instead of being re-sent, because re-sending a
                    // non-idempotent script (a counter, a rotation) could apply it twice.
                    c.max_command_attempts = 1;
                    c.unresponsive = UnresponsiveConfig {
                        max_timeout: Some(cfg.unresponsive_timeout),
                        interval: (cfg.unresponsive_timeout / 4).max(Duration::from_millis(100)),
                    };
                })
                .with_performance_config(|p| {
                    p.default_command_timeout = cfg.command_timeout;
                    p.broadcast_channel_capacity = 1024;
                });
            builder
        };
        let pool = builder.build_pool(cfg.pool_size)?;
        let subscriber = builder.build_subscriber_client()?;
        let inner = Arc::new(Inner {
            pool,
            subscriber,
            prefix: cfg.key_prefix.clone(),
            scripts: ScriptRegistry::default(),
            hub: Hub::default(),
            up: AtomicBool::new(false),
            command_timeout: cfg.command_timeout,
            coalescer: Arc::default(),
            id: Arc::new(()),
        });
        let redis = Redis { inner };
        redis.start();
        Ok(redis)
    }

    fn start(&self) {
        let inner = &self.inner;
        inner.pool.connect_pool();
        inner.subscriber.connect();
        // Re-issue SUBSCRIBE for every channel after the subscriber reconnects.
        let _resubscribe = inner.subscriber.manage_subscriptions();
        crate::pubsub::spawn_dispatcher(&inner.subscriber, inner.hub.clone());

        // One log line per outage and one per recovery, not one per attempt; scripts are loaded
        // again on each connect so the first request after a restart does not pay for NOSCRIPT.
        for client in inner.pool.clients() {
            let weak = Arc::downgrade(&self.inner);
            client.on_reconnect(move |server| {
                let weak = weak.clone();
                async move {
                    if let Some(inner) = weak.upgrade() {
                        if !inner.up.swap(true, Ordering::SeqCst) {
                            tracing::info!(server = %server, "redis connected");
                        }
                        inner.scripts.load_all(inner.pool.next()).await;
                    }
                    Ok(())
                }
            });
            let weak = Arc::downgrade(&self.inner);
            client.on_error(move |(error, _server)| {
                let weak = weak.clone();
                async move {
                    if let Some(inner) = weak.upgrade() {
                        if inner.up.swap(false, Ordering::SeqCst) {
                            tracing::warn!(error = %error, "redis connection lost; reconnecting in the background");
                        } else {
                            tracing::debug!(error = %error, "redis still unreachable");
                        }
                    }
                    Ok(())
                }
            });
        }
    }

    /// Waits up to `timeout` for the first connection; returns whether Redis is connected.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.is_connected() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.is_connected()
    }

    /// Whether every pooled connection is currently up.
    pub fn is_connected(&self) -> bool {
        self.inner.pool.clients().iter().all(|c| c.is_connected())
    }

    /// Whether Redis answers at all: some pooled connection is up. A fail-fast check before
    /// work that would otherwise wait for a command timeout; a connection still coming up (at
    /// start, or after one dropped) queues its commands until it is, so it does not count as an
    /// outage.
    pub fn is_reachable(&self) -> bool {
        self.inner.pool.clients().iter().any(|c| c.is_connected())
    }

    /// The configured key prefix (`app:`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// `<prefix><suffix>`: every key this app writes goes through here.
    pub fn key(&self, suffix: &str) -> String {
        let mut key = String::with_capacity(self.inner.prefix.len() + suffix.len());
        key.push_str(&self.inner.prefix);
        key.push_str(suffix);
        key
    }

    /// Registers a Lua script under its name; it is loaded on every (re)connect and run with
    /// EVALSHA, reloading on NOSCRIPT. Returns the handle to [`eval`](Self::eval) it with.
    pub fn register_script(&self, name: &'static str, lua: &'static str) -> Script {
        self.inner.scripts.register(name, lua)
    }

    /// Registers a Lua script generated at run time, as [`register_script`](Self::register_script)
    /// does a constant one (the same name and source again give the same script).
    pub fn register_generated_script(&self, name: String, lua: String) -> Script {
        self.inner.scripts.register_generated(name, lua)
    }

    /// Registers a Lua script generated at run time whose body ends by returning `values`
    /// values (`return a, b`; 1 to 4). Run alone it answers them as an array; combined with
    /// other calls into one script, its values travel in the combined reply as they are,
    /// where an array per part costs Redis a table and its conversion (callgrind, 14 guarded
    /// reads per combined call: 22.0k to 17.1k Redis instructions per read).
    pub fn register_generated_values_script(&self, name: String, lua: String, values: usize) -> Script {
        self.inner.scripts.register_generated_values(name, lua, values)
    }

    /// Runs a registered script (EVALSHA; on NOSCRIPT it loads the script and retries once).
    /// In a cluster every key must share one hash tag. Inside [`batched`](Self::batched) the
    /// script is queued as this is called, to travel with the others issued in the same poll.
    pub fn eval(&self, script: &Script, keys: Vec<String>, args: Vec<Arg>) -> Eval<'_> {
        match crate::batch::enqueue(script, keys, args, false) {
            Ok(reply) => Eval::queued(reply),
            Err((keys, args)) => {
                let script = *script;
                Eval::alone(async move { self.eval_now(&script, keys, args).await })
            }
        }
    }

    /// Runs a script now, outside any batch: EVALSHA, and on NOSCRIPT (a failover to a
    /// replica that never saw the script, a `SCRIPT FLUSH`) `SCRIPT LOAD` and once more. Not
    /// fred's `evalsha_with_reload`: that one clones the script's hash (a reference count that
    /// every core shares) and holds the retry inline; here the hash is static and the rare
    /// retry is boxed. (fred's EVALSHA future alone is about 7 KB, which is why [`Eval`] boxes
    /// this future once where it is made: the futures holding an `eval` stay small and cheap
    /// to move.)
    pub(crate) async fn eval_now(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Arg>,
    ) -> Result<Reply, RedisError> {
        let client = &self.client();
        let keys = fred::types::MultipleKeys::from(keys);
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        let args = Value::Array(args);
        // The hash's bytes are the interned script's (static): cloning them costs nothing.
        let first = client.evalsha::<Value, _, _, _>(script.sha1_str(), keys.clone(), args.clone()).await;
        let value = match first {
            Err(err) if err.details().starts_with("NOSCRIPT") => {
                let fred = script.fred();
                Box::pin(async move {
                    fred.load(client).await?;
                    client.evalsha::<Value, _, _, _>(fred.sha1().clone(), keys, args).await
                })
                .await?
            }
            other => other?,
        };
        Ok(Reply::from(value))
    }

    /// The registry (for combined scripts).
    pub(crate) fn scripts(&self) -> &ScriptRegistry {
        &self.inner.scripts
    }

    /// Whether the client talks to a cluster.
    pub fn is_clustered(&self) -> bool {
        // Not `pool.next()`: that bumps the pool's shared counter, for nothing here.
        self.inner.pool.clients().first().is_some_and(|c| c.is_clustered())
    }

    /// PING; returns the round-trip time.
    pub async fn ping(&self) -> Result<Duration, RedisError> {
        let started = Instant::now();
        let _: String = self.client().ping(None).await?;
        Ok(started.elapsed())
    }

    /// The raw `INFO` text (default sections).
    pub async fn info(&self) -> Result<String, RedisError> {
        Ok(self.client().info(None).await?)
    }

    /// GET.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RedisError> {
        let value: Value = self.client().get(key).await?;
        Ok(match Reply::from(value) {
            Reply::Bytes(bytes) => Some(bytes),
            _ => None,
        })
    }

    /// SET with a TTL; with `only_if_absent`, NX. Returns whether the value was written.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration, only_if_absent: bool) -> Result<bool, RedisError> {
        let expire = Some(Expiration::PX(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)));
        let options = only_if_absent.then_some(SetOptions::NX);
        let reply: Option<String> = self.client().set(key, value, expire, options, false).await?;
        Ok(reply.is_some())
    }

    /// DEL; returns how many keys existed.
    pub async fn del(&self, keys: Vec<String>) -> Result<u64, RedisError> {
        let n: i64 = self.client().del(keys).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// PTTL: `None` when the key does not exist, `Some(None)` when it has no TTL.
    pub async fn pttl(&self, key: &str) -> Result<Option<Option<Duration>>, RedisError> {
        let ms: i64 = self.client().pttl(key).await?;
        Ok(match ms {
            -2 => None,
            -1 => Some(None),
            ms => Some(Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))),
        })
    }

    /// PUBLISH (classic pub/sub; every subscriber of the channel on any instance receives it).
    pub async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError> {
        let _: i64 = self.client().publish(channel, payload).await?;
        Ok(())
    }

    /// The command pool.
    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The bound on one command (also on waits that stand for one, such as a SUBSCRIBE's confirmation).
    pub fn command_timeout(&self) -> Duration {
        self.inner.command_timeout
    }

    /// Where the commands of this thread go: its lane's connection on a server thread
    /// ([`crate::lane`]), the pool elsewhere.
    fn client(&self) -> Client {
        match self.lane() {
            Some(lane) => lane.client.clone(),
            None => self.inner.pool.next().clone(),
        }
    }

    fn lane(&self) -> Option<Arc<crate::lane::LaneConnection>> {
        crate::lane::connection(&self.inner.id, || self.inner.pool.next().clone_new())
    }

    /// The coalescer of this thread's requests: its lane's, or the one shared off the lanes.
    pub(crate) fn coalescer(&self) -> Arc<crate::batch::Coalescer> {
        match self.lane() {
            Some(lane) => lane.coalescer.clone(),
            None => self.inner.coalescer.clone(),
        }
    }

    /// The fan-out hub of the subscriber connection.
    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The subscriber connection.
    pub(crate) fn subscriber(&self) -> &SubscriberClient {
        &self.inner.subscriber
    }

    /// Closes every connection (QUIT); pending commands finish or fail first. Bounded by the
    /// command timeout, so shutdown never hangs on a frozen Redis.
    pub async fn close(&self) {
        let quit = async {
            let _ = tokio::join!(self.inner.subscriber.quit(), self.inner.pool.quit());
        };
        if tokio::time::timeout(self.inner.command_timeout, quit).await.is_err() {
            tracing::warn!("redis did not acknowledge QUIT in time; dropping the connections");
        }
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn client_config(cfg: &RedisConfig) -> Result<Config, RedisError> {
    let mut config = match cfg.url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => Config::from_url(url)?,
        None => {
            let host = cfg.host.clone().unwrap_or_else(|| "127.0.0.1".into());
            let mut config = Config {
                server: ServerConfig::new_centralized(host, cfg.port),
                username: cfg.username.clone(),
                password: cfg.password.as_ref().map(|p| p.expose().to_owned()),
                database: (cfg.db != 0).then_some(cfg.db),
                ..Config::default()
            };
            if cfg.tls {
                config.tls = Some(TlsConnector::default_rustls()?.into());
            }
            config
        }
    };
    // Let the first connection use the reconnect policy too: the app must start while Redis is down.
    config.fail_fast = false;
    Ok(config)
}
