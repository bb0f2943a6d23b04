//! The job queue's benchmark (run by `scripts/bench-jobs.sh`): N no-op jobs on a real Redis.
//!
//! 1. enqueue rate: N jobs submitted (64 in flight) while no worker runs;
//! 2. processing rate: N queued jobs drained by 1 worker, then N more by 4 workers, each a worker
//!    process of its own in effect (its own consumer and connection, one job at a time), timed from
//!    the first start to the last completion (the records' timestamps);
//! 3. end-to-end latency, submit to completed, with 4 workers running and jobs submitted at a share
//!    (`LOAD`, default 0.5) of the measured 4-worker rate: p50 and p99 from the records'
//!    timestamps (Redis clock, ms).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use app_core::Module;
use app_core::{FieldError, metrics::Metrics};
use app_database::{Database, DatabaseConfig, DatabaseContainer, SqlDatabase};
use app_jobs::{
    JobContext, JobError, JobHandler, JobOutput, JobRegistry, JobsConfig, NewJob, QueueConfig, Retention, Workers,
    results::{JobResults, SqlJobResults},
    store::{JobStore, RedisJobStore},
};
use app_redis::{Redis, RedisConfig};
use async_trait::async_trait;
use futures::StreamExt;
use shaku::HasComponent;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: app::alloc::MiMalloc = app::alloc::MiMalloc;

struct Noop;

#[async_trait]
impl JobHandler for Noop {
    fn kind(&self) -> &'static str {
        "bench.noop"
    }

    fn validate(&self, _: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    async fn run(&self, _: &JobContext, _: serde_json::Value) -> Result<Option<JobOutput>, JobError> {
        Ok(None)
    }
}

const QUEUE: &str = "bench_noop";

fn new_job(owner: Uuid) -> NewJob {
    NewJob {
        id: Uuid::now_v7(),
        owner,
        kind: "bench.noop".into(),
        queue: QUEUE.into(),
        params: "{}".into(),
        max_attempts: 3,
        // As the service submits them: counted against the owner's open jobs.
        max_open: u32::MAX,
    }
}

async fn enqueue(store: &Arc<dyn JobStore>, n: usize) -> Vec<Uuid> {
    let owner = Uuid::now_v7();
    futures::stream::iter(0..n)
        .map(|_| {
            let store = store.clone();
            async move { store.enqueue(&new_job(owner)).await.expect("enqueue").expect("admitted").id }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

async fn wait_completed(store: &Arc<dyn JobStore>, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while store.stats(QUEUE).await.expect("stats").completed < total {
        assert!(Instant::now() < deadline, "the jobs did not complete in 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Where results would go: no-op jobs write none, so the database is never touched on the hot
/// path; the workers need one all the same.
async fn results(dir: &std::path::Path) -> Arc<dyn JobResults> {
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.display());
    let database = Database::connect(&DatabaseConfig { url, ..DatabaseConfig::default() }).await.expect("sqlite");
    database.migrate(&app_jobs::JobsModule.migrations()).await.expect("migrate");
    let db: Arc<dyn SqlDatabase> = DatabaseContainer::with_database(database).build().resolve();
    Arc::new(SqlJobResults::new(db))
}

fn workers(
    store: &Arc<dyn JobStore>,
    results: &Arc<dyn JobResults>,
    registry: &JobRegistry,
    config: &JobsConfig,
    n: usize,
) -> Vec<Workers> {
    (0..n).map(|_| Workers::start(store.clone(), results.clone(), registry, config.clone(), &Metrics::new())).collect()
}

async fn stop(workers: Vec<Workers>) {
    futures::future::join_all(workers.into_iter().map(Workers::stop)).await;
}

/// CPU seconds this process has used (utime + stime).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 3, utime field 14, stime field 15 (clock ticks; 100 Hz).
    (ticks(11) + ticks(12)) / 100.0
}

/// Redis's CPU seconds and commands executed so far (those called from scripts included).
async fn redis_counters(redis: &Redis) -> (f64, u64) {
    let info = redis.info().await.unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .unwrap_or("0")
            .trim()
            .to_owned()
    };
    let cpu =
        field("used_cpu_sys").parse::<f64>().unwrap_or(0.0) + field("used_cpu_user").parse::<f64>().unwrap_or(0.0);
    (cpu, field("total_commands_processed").parse().unwrap_or(0))
}

/// What a drain cost: jobs/s, and per 1000 jobs the CPU ms of Redis and of this process, and
/// Redis commands per job (the 5 ms progress poll included, as in BullMQ's bench).
struct Drained {
    rate: f64,
    redis_ms: f64,
    app_ms: f64,
    commands: f64,
}

impl std::fmt::Display for Drained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} jobs/s; CPU per 1000 jobs: {:.0} ms (Redis {:.0} + workers {:.0}); {:.1} Redis commands per job",
            self.rate,
            self.redis_ms + self.app_ms,
            self.redis_ms,
            self.app_ms,
            self.commands
        )
    }
}

#[allow(clippy::too_many_arguments)] // a benchmark's plumbing, called twice
async fn drain(
    redis: &Redis,
    store: &Arc<dyn JobStore>,
    results: &Arc<dyn JobResults>,
    registry: &JobRegistry,
    config: &JobsConfig,
    n: usize,
    k: usize,
    done: &mut u64,
) -> Drained {
    store.set_paused(QUEUE, true).await.expect("pause");
    enqueue(store, n).await;
    let running = workers(store, results, registry, config, k);
    // Let the workers connect and wait on the paused queue.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (redis_cpu, commands) = redis_counters(redis).await;
    let app_cpu = own_cpu();
    let started = Instant::now();
    store.set_paused(QUEUE, false).await.expect("resume");
    *done += n as u64;
    wait_completed(store, *done).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let (redis_after, commands_after) = redis_counters(redis).await;
    let per_1000 = 1000.0 * 1000.0 / n as f64;
    let drained = Drained {
        rate,
        redis_ms: (redis_after - redis_cpu) * per_1000,
        app_ms: (own_cpu() - app_cpu) * per_1000,
        commands: commands_after.saturating_sub(commands) as f64 / n as f64,
    };
    stop(running).await;
    drained
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let n: usize = std::env::var("JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let config = RedisConfig {
        url: Some(url),
        key_prefix: format!("bench{}:", Uuid::now_v7().simple()),
        ..RedisConfig::default()
    };
    let redis = Redis::connect(&config).expect("client");
    assert!(redis.wait_connected(Duration::from_secs(5)).await, "Redis answers");
    let retention = Retention { ttl: Duration::from_secs(600), keep_completed: u32::MAX, keep_failed: 1000 };
    let store: Arc<dyn JobStore> = Arc::new(RedisJobStore::new(redis.clone(), retention));
    let registry = JobRegistry::new();
    registry.register(Noop);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let results = results(dir.path()).await;
    let mut jobs = JobsConfig::default();
    jobs.queues.insert(QUEUE.into(), QueueConfig { concurrency: 1, ..QueueConfig::default() });

    // 1. Enqueue rate (no worker runs yet, so the jobs just queue).
    let started = Instant::now();
    enqueue(&store, n).await;
    let enqueue_rate = n as f64 / started.elapsed().as_secs_f64();
    println!("enqueue: {n} jobs at {enqueue_rate:.0} jobs/s (64 in flight)");
    let mut done = 0;
    // Those jobs, as a warm-up of Redis and the process.
    let warm = workers(&store, &results, &registry, &jobs, 4);
    done += n as u64;
    wait_completed(&store, done).await;
    stop(warm).await;

    // 2. Processing rate: N queued jobs drained by 1 worker, then N more by 4.
    let one = drain(&redis, &store, &results, &registry, &jobs, n, 1, &mut done).await;
    println!("processing, 1 worker: {one}");
    let four = drain(&redis, &store, &results, &registry, &jobs, n, 4, &mut done).await;
    println!("processing, 4 workers: {four}");
    let four = four.rate;

    // 3. Latency at about half the 4-worker rate.
    let running = workers(&store, &results, &registry, &jobs, 4);
    // Let the workers connect their blocking reads (a few dozen ms) before the clock runs.
    enqueue(&store, 8).await;
    done += 8;
    wait_completed(&store, done).await;
    let count = (n / 5).max(100);
    // LOAD: the share of the 4-worker rate jobs are submitted at (default 0.5).
    let load: f64 = std::env::var("LOAD").ok().and_then(|v| v.parse().ok()).unwrap_or(0.5_f64).clamp(0.01, 1.0);
    let pace = Duration::from_secs_f64(1.0 / (four.max(1.0) * load));
    let owner = Uuid::now_v7();
    let mut ids = Vec::with_capacity(count);
    let mut tick = tokio::time::interval(pace);
    for _ in 0..count {
        tick.tick().await;
        let job = new_job(owner);
        ids.push(job.id);
        let store = store.clone();
        tokio::spawn(async move { store.enqueue(&job).await.expect("enqueue") });
    }
    done += count as u64;
    wait_completed(&store, done).await;
    stop(running).await;
    let (mut latencies, mut waits): (Vec<i64>, Vec<i64>) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for id in ids {
        let record = store.get(QUEUE, id).await.expect("get").expect("kept");
        latencies.push(record.finished_ms.unwrap_or(record.created_ms) - record.created_ms);
        waits.push(record.started_ms.unwrap_or(record.created_ms) - record.created_ms);
    }
    latencies.sort_unstable();
    waits.sort_unstable();
    println!(
        "latency, submit to completed ({count} jobs at {:.0} jobs/s, 4 workers): p50 {} ms, p99 {} ms \
         (of which waiting for a worker: p50 {} ms, p99 {} ms)",
        1.0 / pace.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&waits, 0.5),
        percentile(&waits, 0.99)
    );
    redis.close().await;
}
