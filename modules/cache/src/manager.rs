//! The cache manager: typed entries in namespaces, cache-aside reads with stampede protection,
//! invalidation by generations and tags, hit/miss counts.
//!
//! The cache is never a reason for a request to fail: when the store is unreachable, reads go
//! to the loader (the database) and writes are skipped, with one warning per outage. Values are
//! MessagePack (compact, and a value that no longer decodes is a miss that gets replaced).

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use app_core::{metrics::Metrics, versions::UserVersions};
use app_redis::RedisError;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use serde::{Serialize, de::DeserializeOwned};

use uuid::Uuid;

use crate::{
    CacheConfig,
    flight::{Flights, Role},
    store::{CacheStore, EntryKey, Read},
};

/// A held fill lock. Released by [`release`](Self::release); when dropped unreleased (the
/// loading request was cancelled), released in the background, so other readers do not wait for
/// its TTL.
struct FillLock {
    store: Arc<dyn CacheStore>,
    key: (String, String, String, Duration),
    generation: u64,
    token: Option<String>,
}

impl FillLock {
    fn new(store: &Arc<dyn CacheStore>, key: EntryKey<'_>, generation: u64, token: String) -> Self {
        let key = (key.namespace.to_owned(), key.scope.to_owned(), key.item.to_owned(), key.generation_ttl);
        Self { store: store.clone(), key, generation, token: Some(token) }
    }

    /// Stores `bytes` (when the scope is still at the lock's generation), then releases the
    /// lock, in a task of their own; the caller waits for it at most [`WRITE_WAIT`], so a store
    /// that froze while the database was read delays the answer by no more than that. The order
    /// holds: other instances polling for the value see it before the lock goes.
    async fn store_and_release(mut self, bytes: Option<Arc<Vec<u8>>>, ttl: Duration) {
        let Some(token) = self.token.take() else { return };
        let (store, key, generation) = (self.store.clone(), self.key.clone(), self.generation);
        let task = tokio::spawn(async move {
            let entry = EntryKey { namespace: &key.0, scope: &key.1, item: &key.2, generation_ttl: key.3 };
            if let Some(bytes) = bytes
                && let Err(err) = store.write(entry, &bytes, ttl, Some(generation)).await
            {
                tracing::debug!(error = %err, "could not store a loaded cache entry");
            }
            let _ = store.unlock(entry, generation, &token).await;
        });
        let _ = tokio::time::timeout(WRITE_WAIT, task).await;
    }
}

/// The scope of everything cached about a user (`u:<id>`), the scope the user's version covers.
/// Written on the stack: a request that finds its copy builds no string.
#[derive(Clone, Copy)]
pub struct UserScope([u8; 38]);

impl UserScope {
    /// `user`'s scope.
    pub fn new(user: Uuid) -> Self {
        let mut scope = [0; 38];
        scope[..2].copy_from_slice(b"u:");
        user.hyphenated().encode_lower(&mut scope[2..]);
        Self(scope)
    }
}

impl std::ops::Deref for UserScope {
    type Target = str;

    fn deref(&self) -> &str {
        // ASCII only: `u:` and the id's hex digits and hyphens.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// How long an answer waits for its cache fill to be written before it goes without (the write
/// carries on): a request meets at most one full store timeout, and this.
const WRITE_WAIT: Duration = Duration::from_secs(1);

impl Drop for FillLock {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, key, generation) = (self.store.clone(), self.key.clone(), self.generation);
        runtime.spawn(async move {
            let entry = EntryKey { namespace: &key.0, scope: &key.1, item: &key.2, generation_ttl: key.3 };
            let _ = store.unlock(entry, generation, &token).await;
        });
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    namespace: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabel {
    namespace: String,
}

/// A namespace of entries of one type, with its TTL and counters. Cheap to clone.
#[derive(Clone)]
pub struct Namespace(Arc<NamespaceInner>);

struct NamespaceInner {
    name: &'static str,
    /// `name.v<version>`: bumping the version (when the cached type changes) orphans old entries.
    key: String,
    ttl: Duration,
    hits: Counter,
    misses: Counter,
    loads: Counter,
    /// Invalidations that failed (their scope's entries lived on until their TTL).
    lost_invalidations: Counter,
    /// Whether the namespace's scopes are users' (`u:<id>`) and its entries are kept in process,
    /// validated by users' versions (on the shared-state Redis, see [`Copies`]).
    versioned: bool,
}

/// Entries of users' scopes kept in process: an entry read or filled by a request is served
/// again while the user's version (read with the request's rate-limit count, in the user's hash
/// tag; see [`app_core::versions`]) is the one that request read. Every invalidation moves the
/// version on in the script that bumps the scope's generation, before it answers, so a request
/// that starts after a write on any instance never gets a copy from before it (a copy is never
/// older than its version: the version is read before the entry). Bounded: at most
/// [`Copies::CAPACITY`] entries, each served for at most [`Copies::MAX_AGE`].
/// Copies are kept decoded: a hit costs a clone, where decoding the entry cost about 5% of a
/// guarded cached read's instructions (MessagePack, then the timestamps' RFC 3339 parse).
struct Copies {
    versions: Arc<UserVersions>,
    entries: quick_cache::sync::Cache<CopyKey, (i64, Instant, Decoded)>,
}

/// A decoded entry (of the namespace's one type).
type Decoded = Arc<dyn std::any::Any + Send + Sync>;

impl Copies {
    const CAPACITY: usize = 100_000;
    /// A copy is read again from Redis after this long even while the version stands: a bound
    /// on what a missed version move could cost (an instance of an earlier build, which moves
    /// other counters, writing beside this one during a rolling upgrade). At this age a busy
    /// user's copy costs one Redis read a second.
    const MAX_AGE: Duration = Duration::from_secs(1);
}

/// A copy's namespace and entry (scope and item), as the copies keep it: made only when a copy
/// is kept.
#[derive(PartialEq, Eq)]
struct CopyKey {
    ns: &'static str,
    scope: Box<str>,
    item: Box<str>,
}

/// A copy's key as a lookup borrows it (a hit builds no key); hashed as [`CopyKey`] is.
#[derive(Hash)]
struct CopyRef<'a> {
    ns: &'a str,
    scope: &'a str,
    item: &'a str,
}

impl std::hash::Hash for CopyKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        CopyRef { ns: self.ns, scope: &self.scope, item: &self.item }.hash(state);
    }
}

impl quick_cache::Equivalent<CopyKey> for CopyRef<'_> {
    fn equivalent(&self, key: &CopyKey) -> bool {
        self.ns == key.ns && self.scope == &*key.scope && self.item == &*key.item
    }
}

impl Namespace {
    /// The namespace's name (`user`, `lib`).
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// The entries' TTL (before jitter).
    pub fn ttl(&self) -> Duration {
        self.0.ttl
    }

    fn key<'a>(&'a self, scope: &'a str, item: &'a str) -> EntryKey<'a> {
        EntryKey { namespace: &self.0.key, scope, item, generation_ttl: self.generation_ttl() }
    }

    /// How long a generation counter outlives its last use: longer than any entry (TTL plus the
    /// largest jitter). (Generations come from the clock, so even a counter gone early never
    /// makes a dead entry current again; this keeps counters from vanishing under live entries.)
    fn generation_ttl(&self) -> Duration {
        self.0.ttl * 2 + Duration::from_secs(60)
    }
}

/// A namespace's counters since start-up (this instance).
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceStats {
    /// The namespace.
    pub namespace: &'static str,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that had to load.
    pub misses: u64,
    /// Loader calls (database queries); below `misses` when concurrent misses were coalesced.
    pub loads: u64,
}

impl NamespaceStats {
    /// `hits / (hits + misses)`, 0 when there were no reads.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 { 0.0 } else { self.hits as f64 / total as f64 }
    }
}

/// The cache's counters, registered in the app's metrics once.
#[derive(Clone, Default)]
pub struct CacheMetrics {
    requests: Family<RequestLabel, Counter>,
    loads: Family<NamespaceLabel, Counter>,
    lost_invalidations: Family<NamespaceLabel, Counter>,
}

impl CacheMetrics {
    /// The counters, registered in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let this = Self::default();
        metrics.register("cache_requests", "Cache reads by namespace and result (hit, miss)", this.requests.clone());
        metrics.register("cache_loads", "Loader calls (database reads) made to fill cache misses", this.loads.clone());
        metrics.register(
            "cache_invalidation_failures",
            "Invalidations that failed after the write committed (stale entries then live until their TTL)",
            this.lost_invalidations.clone(),
        );
        this
    }
}

/// The cache manager (one per app instance).
pub struct CacheManager {
    store: Arc<dyn CacheStore>,
    /// In-process copies of users' entries, validated per request (the shared-state Redis only).
    copies: Option<Copies>,
    config: CacheConfig,
    metrics: CacheMetrics,
    flights: Arc<Flights>,
    namespaces: Mutex<Vec<Namespace>>,
    /// Whether the store is known to be failing (one warning per outage).
    outage: AtomicBool,
}

impl CacheManager {
    /// A manager over `store`, counting in `metrics` (registered once: [`CacheMetrics::register`]).
    pub fn new(store: Arc<dyn CacheStore>, config: CacheConfig, metrics: CacheMetrics) -> Self {
        Self {
            store,
            copies: None,
            config,
            metrics,
            flights: Arc::default(),
            namespaces: Mutex::default(),
            outage: AtomicBool::new(false),
        }
    }

    /// Keeps users' entries in process, validated by users' versions read with each request
    /// (see [`Copies`]): only for a store on the shared-state Redis, where the versions live.
    pub fn with_copies(mut self, versions: Arc<UserVersions>) -> Self {
        self.copies = Some(Copies { versions, entries: quick_cache::sync::Cache::new(Copies::CAPACITY) });
        self
    }

    /// Declares a namespace whose scopes are users (`u:<id>`): as [`namespace`](Self::namespace),
    /// and its entries are served from in-process copies while the user's version, read with
    /// each request, is unchanged.
    pub fn user_namespace(&self, name: &'static str, version: u32, ttl: Duration) -> Namespace {
        self.declare(name, version, ttl, true)
    }

    /// Declares a namespace: entries of one type, `version` bumped whenever that type changes
    /// shape, living `ttl` (plus jitter). Declaring the same name again returns the same one.
    pub fn namespace(&self, name: &'static str, version: u32, ttl: Duration) -> Namespace {
        self.declare(name, version, ttl, false)
    }

    fn declare(&self, name: &'static str, version: u32, ttl: Duration, per_user: bool) -> Namespace {
        let mut namespaces = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ns) = namespaces.iter().find(|ns| ns.0.name == name) {
            return ns.clone();
        }
        let counter =
            |result| self.metrics.requests.get_or_create(&RequestLabel { namespace: name.into(), result }).clone();
        let key = format!("{name}.v{version}");
        let versioned = per_user && self.copies.is_some();
        let ns = Namespace(Arc::new(NamespaceInner {
            name,
            versioned,
            key,
            ttl,
            hits: counter("hit"),
            misses: counter("miss"),
            loads: self.metrics.loads.get_or_create(&NamespaceLabel { namespace: name.into() }).clone(),
            lost_invalidations: self
                .metrics
                .lost_invalidations
                .get_or_create(&NamespaceLabel { namespace: name.into() })
                .clone(),
        }));
        namespaces.push(ns.clone());
        ns
    }

    /// The counters of every namespace, in declaration order.
    pub fn stats(&self) -> Vec<NamespaceStats> {
        let namespaces = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        namespaces
            .iter()
            .map(|ns| NamespaceStats {
                namespace: ns.0.name,
                hits: ns.0.hits.get(),
                misses: ns.0.misses.get(),
                loads: ns.0.loads.get(),
            })
            .collect()
    }

    /// The cached value, if there is a current one.
    pub async fn get<T: DeserializeOwned>(&self, ns: &Namespace, scope: &str, item: &str) -> Option<T> {
        let read = self.read(ns, scope, item).await?;
        match read.value.as_deref().and_then(decode) {
            Some(value) => {
                ns.0.hits.inc();
                Some(value)
            }
            None => {
                ns.0.misses.inc();
                None
            }
        }
    }

    /// Stores `value` under the scope's current generation (write-through).
    pub async fn set<T: Serialize>(&self, ns: &Namespace, scope: &str, item: &str, value: &T) {
        let Some(bytes) = encode(value) else { return };
        if self.usable() {
            let written = self.store.write(ns.key(scope, item), &bytes, self.jittered(ns.0.ttl), None).await;
            self.observe(written);
        }
    }

    /// Removes one entry. Failures are logged; the entry then lives until its TTL.
    pub async fn delete(&self, ns: &Namespace, scope: &str, item: &str) {
        if self.reachable() {
            let deleted = self.store.delete(ns.key(scope, item)).await;
            self.observe(deleted);
        }
    }

    /// Invalidates every entry of the scope (one O(1) generation bump). Called after the
    /// database write committed. Returns whether it took effect; a failure is logged, and the
    /// old entries then live until their TTL.
    pub async fn invalidate(&self, ns: &Namespace, scope: &str) -> bool {
        // A hiccup (a timeout, a failover) is retried twice, briefly; a store known to be down
        // is not waited for.
        let mut bumped = Err(RedisError::Unavailable("not connected".into()));
        let version = self.version_key(ns, scope);
        for attempt in 0..3 {
            if !self.reachable() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            bumped = self.store.bump(&ns.0.key, scope, ns.generation_ttl(), version.as_deref()).await;
            if bumped.is_ok() {
                break;
            }
        }
        if let Err(err) = &bumped {
            ns.0.lost_invalidations.inc();
            tracing::warn!(
                namespace = ns.0.name, error = %err,
                "cache invalidation failed; cached entries stay until their TTL"
            );
        }
        self.observe(bumped).is_some()
    }

    /// Adds the entry to the ad-hoc group `tag`, for [`invalidate_tag`](Self::invalidate_tag).
    pub async fn tag(&self, tag: &str, ns: &Namespace, scope: &str, item: &str) {
        if self.usable() {
            let tagged = self.store.tag(tag, ns.key(scope, item), ns.generation_ttl()).await;
            self.observe(tagged);
        }
    }

    /// Deletes every entry tagged `tag`; how many there were.
    pub async fn invalidate_tag(&self, tag: &str) -> u64 {
        let deleted = match self.reachable() {
            true => self.store.invalidate_tag(tag).await,
            false => Err(RedisError::Unavailable("not connected".into())),
        };
        if let Err(err) = &deleted {
            tracing::warn!(tag, error = %err, "cache tag invalidation failed; entries stay until their TTL");
        }
        self.observe(deleted).unwrap_or(0)
    }

    /// The cached value, or `load`'s (then cached). Concurrent misses for one entry run `load`
    /// once: in this process they wait for one leader, across instances for the holder of the
    /// entry's fill lock (bounded by `cache.fill_wait`). Loader errors are returned, not cached.
    pub async fn get_or_load<T, E, F, Fut>(&self, ns: &Namespace, scope: &str, item: &str, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let version = self.read_version(ns, scope);
        if let Some(value) = version.and_then(|version| self.copy(ns, scope, item, version)) {
            ns.0.hits.inc();
            return Ok(value);
        }
        let Some(read) = self.read(ns, scope, item).await else {
            ns.0.misses.inc();
            return self.load(ns, load).await;
        };
        if let Some(bytes) = read.value.as_deref()
            && let Some(value) = decode::<T>(bytes)
        {
            ns.0.hits.inc();
            if let Some(version) = version {
                self.keep_copy(ns, scope, item, version, Arc::new(value.clone()));
            }
            return Ok(value);
        }
        ns.0.misses.inc();
        // One flight per entry *and generation*: a reader that saw a newer generation (a write
        // happened) never takes a value loaded for an older one.
        let flight = {
            let key = ns.key(scope, item);
            format!("{}:{}:{}@{}", key.namespace, key.scope, key.item, read.generation)
        };
        match self.flights.join(flight) {
            Role::Follower(follower) => match follower.wait().await.as_deref().and_then(|b| decode(b)) {
                Some(value) => Ok(value),
                // The leader failed or went away: fill by ourselves (the fill lock still lets only
                // one of us at a time query the database).
                None => self.fill(ns, scope, item, read.generation, load).await.map(|(v, _)| v),
            },
            Role::Leader(leader) => {
                let filled = self.fill(ns, scope, item, read.generation, load).await;
                let bytes = filled.as_ref().ok().and_then(|(_, bytes)| bytes.clone());
                if let Some(version) = version
                    && let Ok((value, Some(_))) = &filled
                {
                    self.keep_copy(ns, scope, item, version, Arc::new(value.clone()));
                }
                leader.land(bytes);
                filled.map(|(v, _)| v)
            }
        }
    }

    /// Fills a missed entry seen at `generation`: takes the entry's fill lock (for that
    /// generation) and loads, or waits for the instance holding it, taking the lock over if that
    /// one gives up without a value. After `cache.fill_wait`, it loads by itself.
    async fn fill<T, E, F, Fut>(
        &self,
        ns: &Namespace,
        scope: &str,
        item: &str,
        generation: u64,
        load: F,
    ) -> Result<(T, Option<Arc<Vec<u8>>>), E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = ns.key(scope, item);
        let token = format!("{:032x}", rand::random::<u128>());
        let deadline = Instant::now() + self.config.fill_wait;
        loop {
            let locked = self.store.try_lock(key, generation, &token, self.config.fill_lock_ttl).await;
            match self.observe(locked) {
                // The store is unreachable: load, store nothing.
                None => return self.load(ns, load).await.map(|v| (v, None)),
                Some(true) => {
                    // Released even if this future is dropped midway (the request went away).
                    let held = FillLock::new(&self.store, key, generation, token.clone());
                    // Another instance may have filled the entry and let go of its lock between
                    // our miss and our lock: look once more before querying.
                    let reread = self.observe(self.store.read(key).await);
                    if let Some(read) = &reread
                        && read.generation == generation
                        && let Some(bytes) = &read.value
                        && let Some(value) = decode(bytes)
                    {
                        held.store_and_release(None, Duration::ZERO).await;
                        return Ok((value, Some(Arc::new(bytes.clone()))));
                    }
                    let loaded = self.load(ns, load).await;
                    let bytes = loaded.as_ref().ok().and_then(encode).map(Arc::new);
                    // After a failed read the store is not written to (it is likely down); the
                    // lock goes in the background either way.
                    let write = if reread.is_some() { bytes.clone() } else { None };
                    held.store_and_release(write, self.jittered(ns.0.ttl)).await;
                    return loaded.map(|v| (v, bytes));
                }
                Some(false) => {
                    tokio::time::sleep(self.config.fill_poll_interval).await;
                    let Some(read) = self.observe(self.store.read(key).await) else {
                        return self.load(ns, load).await.map(|v| (v, None));
                    };
                    if read.generation == generation
                        && let Some(bytes) = read.value
                        && let Some(value) = decode(&bytes)
                    {
                        return Ok((value, Some(Arc::new(bytes))));
                    }
                    // The scope moved on (that fill is stale anyway), or we waited long enough.
                    if read.generation != generation || Instant::now() >= deadline {
                        tracing::debug!(namespace = ns.0.name, "no other instance's cache fill to wait for; loading");
                        let value = self.load(ns, load).await?;
                        let stored = self.store_loaded(ns, key, generation, &value).await;
                        return Ok((value, stored));
                    }
                    // Still no value: try the lock again, so a filler that failed is taken over.
                }
            }
        }
    }

    async fn load<T, E, F, Fut>(&self, ns: &Namespace, load: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        ns.0.loads.inc();
        load().await
    }

    /// Stores a loaded value if the scope is still at `generation` (waiting at most
    /// [`WRITE_WAIT`] for it); the encoded value for followers.
    async fn store_loaded<T: Serialize>(
        &self,
        ns: &Namespace,
        key: EntryKey<'_>,
        generation: u64,
        value: &T,
    ) -> Option<Arc<Vec<u8>>> {
        let bytes = Arc::new(encode(value)?);
        let (store, ttl, written) = (self.store.clone(), self.jittered(ns.0.ttl), bytes.clone());
        let owned = (key.namespace.to_owned(), key.scope.to_owned(), key.item.to_owned(), key.generation_ttl);
        let task = tokio::spawn(async move {
            let key = EntryKey { namespace: &owned.0, scope: &owned.1, item: &owned.2, generation_ttl: owned.3 };
            if let Err(err) = store.write(key, &written, ttl, Some(generation)).await {
                tracing::debug!(error = %err, "could not store a loaded cache entry");
            }
        });
        let _ = tokio::time::timeout(WRITE_WAIT, task).await;
        Some(bytes)
    }

    /// The user whose scope `scope` is, in a namespace kept in process.
    fn user_of(ns: &Namespace, scope: &str) -> Option<Uuid> {
        ns.0.versioned.then(|| scope.strip_prefix("u:")?.parse::<Uuid>().ok()).flatten()
    }

    /// The version of `scope`'s user this request read, if it did and the user has one.
    fn read_version(&self, ns: &Namespace, scope: &str) -> Option<i64> {
        app_core::versions::current(Self::user_of(ns, scope).filter(|_| self.config.enabled)?)?
    }

    /// The key of `scope`'s user's version, for an invalidation to move it on (also while this
    /// instance's cache is off: other instances' may be on).
    fn version_key(&self, ns: &Namespace, scope: &str) -> Option<String> {
        self.copies.as_ref()?.versions.key(Self::user_of(ns, scope)?)
    }

    /// The in-process copy of an entry, if it was made under `version`.
    fn copy<T: Clone + 'static>(&self, ns: &Namespace, scope: &str, item: &str, version: i64) -> Option<T> {
        let copies = self.copies.as_ref()?;
        let (at, made, value) = copies.entries.get(&CopyRef { ns: ns.0.name, scope, item })?;
        if at == version && made.elapsed() < Copies::MAX_AGE { value.downcast_ref::<T>().cloned() } else { None }
    }

    fn keep_copy(&self, ns: &Namespace, scope: &str, item: &str, version: i64, value: Decoded) {
        if let Some(copies) = &self.copies {
            let key = CopyKey { ns: ns.0.name, scope: scope.into(), item: item.into() };
            copies.entries.insert(key, (version, Instant::now(), value));
        }
    }

    /// One read, or `None` when the cache is off or unreachable (then the caller loads).
    async fn read(&self, ns: &Namespace, scope: &str, item: &str) -> Option<Read> {
        if !self.usable() {
            return None;
        }
        let read = self.store.read(ns.key(scope, item)).await;
        self.observe(read)
    }

    /// Whether reads and fills use the store: the cache is on and reachable. (Invalidation
    /// only asks [`reachable`](Self::reachable): it runs with the cache off too, so turning it
    /// back on never serves entries that writes made stale meanwhile.)
    fn usable(&self) -> bool {
        self.config.enabled && self.reachable()
    }

    fn reachable(&self) -> bool {
        if self.store.is_available() {
            return true;
        }
        self.observe::<()>(Err(RedisError::Unavailable("not connected".into())));
        false
    }

    /// Notes the store's health from a result: one warning when an outage starts, one line
    /// when it ends.
    fn observe<R>(&self, result: Result<R, RedisError>) -> Option<R> {
        match result {
            Ok(value) => {
                if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::Relaxed) {
                    tracing::info!("the cache store is reachable again");
                }
                Some(value)
            }
            Err(err) => {
                if !self.outage.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "the cache store is unreachable; reading from the database until it is back");
                }
                None
            }
        }
    }

    fn jittered(&self, ttl: Duration) -> Duration {
        let pct = u64::from(self.config.ttl_jitter_percent);
        let max = ttl.as_millis() as u64 * pct / 100;
        if max == 0 { ttl } else { ttl + Duration::from_millis(rand::random_range(0..=max)) }
    }
}

fn encode<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    match rmp_serde::to_vec(value) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            tracing::error!(error = %err, "a value could not be encoded for the cache");
            None
        }
    }
}

/// A value that does not decode (corrupt, or written by an older shape) is a miss.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match rmp_serde::from_slice(bytes) {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::debug!(error = %err, "a cache entry did not decode; treating it as a miss");
            None
        }
    }
}
