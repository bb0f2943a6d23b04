//! Workers: per queue, a fetch loop (bounded by the queue's concurrency and rate limit), a
//! maintenance loop (promoting due retries, reclaiming attempts whose worker stopped), and one
//! task per running job with its heartbeat.
//!
//! Shutdown is cooperative: fetching stops at once; running jobs get `jobs.shutdown_timeout`
//! to finish, and are then handed back to the queue (another worker takes them at once).
//! While the store is unreachable the loops back off and resume by themselves; a job's final
//! write is retried until it lands or the attempt is found taken over, so an outage neither
//! loses a job nor completes it twice.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::Duration,
};

use app_core::metrics::Metrics;
use app_redis::RedisError;
use futures::FutureExt;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    Delivery, Held, JobContext, JobError, JobRegistry, JobsConfig, QueueConfig,
    handler::{JobHandler, ResultLimits, queue_of},
    results::JobResults,
    store::JobStore,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabel {
    queue: String,
    outcome: &'static str,
}

/// How long a final write is retried once shutdown has begun (well inside the grace `stop` gives).
const SETTLE_AT_SHUTDOWN: Duration = Duration::from_secs(3);

/// The running workers of this process.
pub struct Workers {
    store: Arc<dyn JobStore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    timeout: Duration,
    consumer: String,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("consumer", &self.consumer).finish_non_exhaustive()
    }
}

/// One queue's worker state, shared by its loops and job tasks.
struct QueueWorker {
    queue: String,
    handler: Arc<dyn JobHandler>,
    store: Arc<dyn JobStore>,
    results: Arc<dyn JobResults>,
    config: JobsConfig,
    queue_config: QueueConfig,
    consumer: String,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    attempts: Family<AttemptLabel, Counter>,
    /// Whether the store is known to be failing (one warning per outage).
    outage: AtomicBool,
    /// The pause flag as last read, and when: read at most twice a second (the start of an
    /// attempt checks it atomically anyway, so a stale `false` only costs one bounced delivery;
    /// a paused worker waits for the resume itself and reads the flag afresh after it).
    paused: std::sync::Mutex<(bool, Option<tokio::time::Instant>)>,
}

/// A name no other worker process has: host, process id and a random suffix.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

impl Workers {
    /// Starts workers for every registered job type.
    pub fn start(
        store: Arc<dyn JobStore>,
        results: Arc<dyn JobResults>,
        registry: &JobRegistry,
        config: JobsConfig,
        metrics: &Metrics,
    ) -> Workers {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let consumer = consumer_name();
        let attempts = Family::<AttemptLabel, Counter>::default();
        metrics.register(
            "jobs_attempts",
            "Job attempts by queue and outcome (completed, retried, failed, cancelled, released, lost)",
            attempts.clone(),
        );
        for kind in registry.kinds() {
            let Some(handler) = registry.get(kind) else { continue };
            let queue = queue_of(kind);
            let queue_config = config.queue(&queue);
            let worker = Arc::new(QueueWorker {
                slots: Arc::new(Semaphore::new(queue_config.concurrency.max(1) as usize)),
                queue,
                handler,
                store: store.clone(),
                results: results.clone(),
                config: config.clone(),
                queue_config,
                consumer: consumer.clone(),
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
                attempts: attempts.clone(),
                outage: AtomicBool::new(false),
                paused: std::sync::Mutex::new((false, None)),
            });
            tracker.spawn(worker.clone().fetch_loop());
            tracker.spawn(worker.maintenance_loop());
        }
        tracing::info!(consumer, queues = ?registry.queues(), "job workers started");
        Workers { store, shutdown, tracker, timeout: config.shutdown_timeout, consumer }
    }

    /// This process's consumer name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Stops fetching, lets running jobs finish within `jobs.shutdown_timeout` (then hands them
    /// back), and waits for every task.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        // Hand-backs and final writes get a little time beyond the timeout.
        if tokio::time::timeout(self.timeout + Duration::from_secs(5), self.tracker.wait()).await.is_err() {
            tracing::warn!("job workers did not stop in time");
        } else {
            tracing::info!("job workers stopped");
        }
        self.store.close_readers().await;
    }
}

impl QueueWorker {
    fn count(&self, outcome: &'static str) {
        self.attempts.get_or_create(&AttemptLabel { queue: self.queue.clone(), outcome }).inc();
    }

    fn store_ok(&self) {
        if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::Relaxed) {
            tracing::info!(queue = %self.queue, "job workers reach the store again; resuming");
        }
    }

    fn store_failed(&self, err: &RedisError) {
        if !self.outage.swap(true, Ordering::Relaxed) {
            tracing::warn!(queue = %self.queue, error = %err, "job workers cannot reach the store; pausing until it is back");
        }
    }

    /// Sleeps, or returns early (false) on shutdown.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.shutdown.cancelled() => false,
        }
    }

    async fn fetch_loop(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let permit = tokio::select! {
                permit = self.slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
                () = self.shutdown.cancelled() => return,
            };
            match self.next().await {
                Ok(Some(delivery)) if self.shutdown.is_cancelled() => {
                    // Fetched while the shutdown began: straight back to the queue.
                    let (id, lease) = (delivery.job.id, delivery.lease());
                    let _ = self.settle(|| self.store.release(&self.queue, id, lease)).await;
                    drop(permit);
                    return;
                }
                Ok(Some(delivery)) => {
                    backoff = Duration::from_millis(100);
                    self.store_ok();
                    self.tracker.spawn(self.clone().run(delivery, permit));
                }
                Ok(None) => self.store_ok(),
                Err(err) => {
                    drop(permit);
                    self.store_failed(&err);
                    if !self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            if self.shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// The next job to run, when the queue is not paused and its rate limit allows.
    async fn is_paused(&self) -> Result<bool, RedisError> {
        let cached = *self.paused.lock().unwrap_or_else(|p| p.into_inner());
        if let (paused, Some(at)) = cached
            && at.elapsed() < Duration::from_millis(500)
        {
            return Ok(paused);
        }
        let paused = self.store.is_paused(&self.queue).await?;
        *self.paused.lock().unwrap_or_else(|p| p.into_inner()) = (paused, Some(tokio::time::Instant::now()));
        Ok(paused)
    }

    async fn next(&self) -> Result<Option<Delivery>, RedisError> {
        if self.is_paused().await? {
            tokio::select! {
                waited = self.store.wait_resumed(&self.queue, Duration::from_secs(1)) => waited?,
                () = self.shutdown.cancelled() => {}
            }
            self.paused.lock().unwrap_or_else(|p| p.into_inner()).1 = None;
            return Ok(None);
        }
        let limited = self.queue_config.rate_max > 0;
        if limited
            && let Some(wait) =
                self.store.take_rate(&self.queue, self.queue_config.rate_max, self.queue_config.rate_per).await?
        {
            self.pause(wait).await;
            return Ok(None);
        }
        let block = Duration::from_secs(1);
        let fetched = self.store.fetch(&self.queue, &self.consumer, block).await;
        if limited && !matches!(fetched, Ok(Some(_))) {
            // Nothing was waiting: the slot was not used.
            let _ = self.store.refund_rate(&self.queue, self.queue_config.rate_per).await;
        }
        if matches!(fetched, Ok(None)) {
            // Nothing started: perhaps the queue was paused meanwhile; read the flag afresh.
            self.paused.lock().unwrap_or_else(|p| p.into_inner()).1 = None;
        }
        fetched
    }

    async fn maintenance_loop(self: Arc<Self>) {
        let reclaim_every = (self.config.visibility_timeout / 2).max(Duration::from_millis(200));
        let mut last_reclaim = tokio::time::Instant::now();
        loop {
            if !self.pause(Duration::from_millis(250)).await {
                return;
            }
            if let Err(err) = self.store.promote(&self.queue).await {
                self.store_failed(&err);
                continue;
            }
            if last_reclaim.elapsed() < reclaim_every {
                continue;
            }
            last_reclaim = tokio::time::Instant::now();
            // Take over only as many stalled attempts as there are free slots: a claimed attempt
            // waiting for a slot would go stale again.
            let free = self.slots.available_permits();
            if free == 0 {
                continue;
            }
            match self.store.reclaim(&self.queue, &self.consumer, self.config.visibility_timeout, free).await {
                Ok(deliveries) => {
                    for delivery in deliveries {
                        tracing::info!(queue = %self.queue, job = %delivery.job.id, attempt = delivery.job.attempts, "took over a stalled job");
                        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                            // Raced the fetch loop for the slot: the job goes back to the queue.
                            let _ = self.store.release(&self.queue, delivery.job.id, delivery.lease()).await;
                            continue;
                        };
                        self.tracker.spawn(self.clone().run(delivery, permit));
                    }
                }
                Err(err) => self.store_failed(&err),
            }
        }
    }

    /// Runs attempts in one slot: the delivered one, then each next one its completion started.
    async fn run(self: Arc<Self>, delivery: Delivery, _permit: OwnedSemaphorePermit) {
        let mut next = Some(delivery);
        while let Some(delivery) = next.take() {
            if self.shutdown.is_cancelled() {
                // Started by a completion while the shutdown began: straight back to the queue.
                let (id, lease) = (delivery.job.id, delivery.lease());
                self.count("released");
                let _ = self.settle(|| self.store.release(&self.queue, id, lease)).await;
                return;
            }
            next = self.attempt(delivery).await;
        }
    }

    /// Whether a completion may start the slot's next job too: not under a rate limit (each
    /// start takes from it first) nor once shutdown began.
    fn chains(&self) -> bool {
        self.queue_config.rate_max == 0 && !self.shutdown.is_cancelled()
    }

    /// Runs one attempt, heartbeating, and settles its outcome; the next attempt when its
    /// completion started one.
    async fn attempt(self: &Arc<Self>, delivery: Delivery) -> Option<Delivery> {
        let job = &delivery.job;
        let ctx = Arc::new(JobContext {
            id: job.id,
            owner: job.owner,
            attempt: job.attempts,
            lease: delivery.lease(),
            created_ms: job.created_ms,
            queue: self.queue.clone(),
            store: self.store.clone(),
            results: self.results.clone(),
            limits: ResultLimits {
                max_result_bytes: self.config.max_result_bytes,
                kept_ms: i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX),
            },
            stop: CancellationToken::new(),
            cancel_requested: CancellationToken::new(),
            lost: AtomicBool::new(false),
            last_progress: AtomicU8::new(job.progress),
        });
        let heartbeat = tokio::spawn(self.clone().heartbeat(ctx.clone()));
        let params = serde_json::from_str(&delivery.params).unwrap_or(serde_json::Value::Null);
        let handler = self.handler.clone();
        let work = AssertUnwindSafe(async { handler.run(&ctx, params).await }).catch_unwind();
        let deadline = async {
            self.shutdown.cancelled().await;
            tokio::time::sleep(self.config.shutdown_timeout).await;
        };
        let outcome = tokio::select! {
            outcome = work => Some(outcome),
            () = deadline => None,
        };
        heartbeat.abort();
        let (id, lease) = (job.id, delivery.lease());
        let (queue, store) = (&self.queue, &self.store);
        if ctx.lost.load(Ordering::Relaxed) {
            tracing::info!(queue, job = %id, lease, "the job was taken over by another worker; this attempt's outcome is dropped");
            self.count("lost");
            self.results.discard(id, lease).await;
            return None;
        }
        let mut completed = false;
        let mut next = None;
        let settled = match outcome {
            None => {
                tracing::info!(queue, job = %id, "shutting down: handing the job back to the queue");
                self.count("released");
                self.settle(|| store.release(queue, id, lease)).await
            }
            Some(Ok(Ok(output))) => match self.seal(id, lease, output.as_ref()).await {
                Ok(true) => {
                    self.count("completed");
                    let result_type = output.as_ref().map(|o| o.content_type.as_str());
                    let settled = if self.chains() {
                        let consumer = &self.consumer;
                        let settled =
                            self.settle(|| store.complete_and_next(queue, id, lease, result_type, consumer)).await;
                        settled.map(|(held, started)| {
                            next = started;
                            held
                        })
                    } else {
                        self.settle(|| store.complete(queue, id, lease, result_type)).await
                    };
                    completed = settled.is_some_and(|held| held != Held::Lost);
                    settled
                }
                Ok(false) => Some(Held::Lost),
                Err(message) => self.failed(id, lease, job.attempts, job.max_attempts, message).await,
            },
            Some(Ok(Err(JobError::Cancelled))) if ctx.cancellation_requested() => {
                self.count("cancelled");
                self.settle(|| store.cancelled(queue, id, lease)).await
            }
            Some(Ok(Err(JobError::Permanent(message)))) => {
                self.count("failed");
                self.settle(|| store.fail(queue, id, lease, &message, None)).await
            }
            Some(Ok(Err(err))) => self.failed(id, lease, job.attempts, job.max_attempts, &err.to_string()).await,
            Some(Err(_panic)) => {
                self.failed(id, lease, job.attempts, job.max_attempts, "the job handler panicked").await
            }
        };
        if settled == Some(Held::Lost) {
            self.count("lost");
        }
        if !completed {
            // Whatever the attempt wrote is not the result: drop it now rather than at expiry.
            self.results.discard(id, lease).await;
        }
        next
    }

    /// Makes the attempt's result chunks the job's result, kept as long as the job.
    /// `false` when a newer attempt sealed its own (this one was taken over).
    async fn seal(&self, id: uuid::Uuid, lease: u32, output: Option<&crate::JobOutput>) -> Result<bool, &'static str> {
        let Some(output) = output else { return Ok(true) };
        let retention = i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX);
        let expires = crate::results::now_ms().saturating_add(retention);
        self.results.seal(id, lease, &output.content_type, output.size, expires).await.map_err(|err| {
            tracing::warn!(queue = %self.queue, job = %id, error = %err, "could not seal a job's result");
            "the result could not be stored"
        })
    }

    async fn failed(&self, id: uuid::Uuid, lease: u32, attempt: u32, max_attempts: u32, message: &str) -> Option<Held> {
        let retry = (attempt < max_attempts).then(|| self.config.backoff().delay(attempt));
        self.count(if retry.is_some() { "retried" } else { "failed" });
        tracing::info!(queue = %self.queue, job = %id, attempt, error = message, retry_in = ?retry, "job attempt failed");
        self.settle(|| self.store.fail(&self.queue, id, lease, message, retry)).await
    }

    /// Retries a final write until it lands (or, shutting down, for a few seconds: `stop` waits
    /// only so long; an attempt left unsettled is taken over after the visibility timeout).
    async fn settle<T, F, Fut>(&self, write: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let mut delay = Duration::from_millis(100);
        let started = tokio::time::Instant::now();
        loop {
            match write().await {
                Ok(held) => {
                    self.store_ok();
                    return Some(held);
                }
                Err(err) => {
                    self.store_failed(&err);
                    if self.shutdown.is_cancelled() && started.elapsed() > SETTLE_AT_SHUTDOWN {
                        tracing::warn!(queue = %self.queue, error = %err, "gave up a job's final write at shutdown; another worker will take it over");
                        return None;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn heartbeat(self: Arc<Self>, ctx: Arc<JobContext>) {
        let every = (self.config.visibility_timeout / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match self.store.heartbeat(&self.queue, ctx.id, ctx.lease, &self.consumer).await {
                Ok(Held::Yes { cancel_requested }) => {
                    if cancel_requested {
                        ctx.cancel_requested.cancel();
                        ctx.stop.cancel();
                    }
                }
                Ok(Held::Lost) => {
                    ctx.lost.store(true, Ordering::Relaxed);
                    ctx.stop.cancel();
                    return;
                }
                Err(err) => tracing::debug!(job = %ctx.id, error = %err, "heartbeat failed; retrying"),
            }
        }
    }
}
