//! The Redis adapter: Redis Streams with one consumer group per queue, the status register as a
//! hash per job, retries in a sorted set, all of a queue under its `{<queue>}` hash tag.
//!
//! Keys (under the configured prefix), per queue `Q`:
//! - `q:{Q}:stream`: the queue (entries `id=<job id>`), consumer group `workers`;
//! - `q:{Q}:job:<id>`: the record (a hash), `q:{Q}:params:<id>`: its parameters (apart, so
//!   events and listings stay small); result documents are not here but in the SQL database;
//! - `q:{Q}:delayed`: jobs waiting for a retry (score: when);
//! - `q:{Q}:completed`, `q:{Q}:failed`: finished jobs kept (score: when), for keep-last-N;
//! - `q:{Q}:paused`, `q:{Q}:rate`: the pause flag and the rate-limit window;
//! - `q:{Q}:open:<owner>`: the owner's pending and active jobs of the queue (their quota);
//!
//! and `jobs:{u:<owner>}` (the owner's jobs, newest first), `jobs:ticket:{<hash>}` (stream
//! tickets). Every key carries a TTL; the queue's own keys are renewed by every enqueue (and
//! live 30 days without one).

use std::{collections::HashMap, sync::Arc, time::Duration};

use app_redis::{Arg, BlockingConnection, PubSub, Redis, RedisError, RedisPubSub, Reply, Script};
use async_trait::async_trait;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{EVENTS_CHANNEL_PREFIX, JobEvents, JobStore, events_channel, record_events, resumed_channel, scripts};
use crate::{CancelOutcome, Delivery, Held, JobRecord, NewJob, QueueStats, Retention};

/// How long a queue's keys (stream, sets, flags) and an unfinished job's record live without
/// activity. Renewed by every enqueue and every attempt.
const INFRA_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The owner index lists at most this many jobs (the newest).
pub const OWNER_INDEX_CAP: usize = 1000;

struct Scripts {
    enqueue: Script,
    index: Script,
    owner_jobs: Script,
    get_many: Script,
    start: Script,
    heartbeat: Script,
    progress: Script,
    complete: Script,
    complete_next: Script,
    fail: Script,
    release: Script,
    cancel: Script,
    promote: Script,
    claim: Script,
    stats: Script,
    ensure_group: Script,
    drop_entry: Script,
    forget_consumer: Script,
    take_rate: Script,
    refund_rate: Script,
    use_ticket: Script,
}

/// Jobs in Redis, shared by every instance.
pub struct RedisJobStore {
    redis: Redis,
    retention: Retention,
    pubsub: RedisPubSub,
    scripts: Scripts,
    /// One blocking connection per (queue, consumer) fetch loop.
    readers: Mutex<HashMap<(String, String), Arc<BlockingConnection>>>,
    /// Where each queue's next reclaim scan of the pending list starts.
    claim_cursors: std::sync::Mutex<HashMap<String, String>>,
}

fn ms(d: Duration) -> Arg {
    Arg::Int(i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1))
}

fn fields(reply: Reply) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut it = reply.into_array().into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if let (Some(k), Some(v)) =
            (k.as_str(), v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|i| i.to_string())))
        {
            out.insert(k.to_owned(), v);
        }
    }
    out
}

fn unexpected() -> RedisError {
    RedisError::Command("unexpected reply from a job script".into())
}

fn held(reply: Reply) -> Result<Held, RedisError> {
    let parts = reply.into_array();
    let flag = |i: usize| parts.get(i).and_then(Reply::as_i64).ok_or_else(unexpected);
    Ok(if flag(0)? == 1 { Held::Yes { cancel_requested: flag(1)? == 1 } } else { Held::Lost })
}

/// The record and parameters of an attempt a script started.
fn started(mut reply: impl Iterator<Item = Reply>) -> Result<Delivery, RedisError> {
    let record = fields(reply.next().ok_or_else(unexpected)?);
    let params = reply.next().and_then(|p| p.as_str().map(str::to_owned)).unwrap_or_default();
    let job = JobRecord::from_fields(&record).ok_or_else(unexpected)?;
    Ok(Delivery { job, params })
}

fn applied(reply: &Reply) -> Held {
    if reply.as_i64() == Some(1) { Held::Yes { cancel_requested: false } } else { Held::Lost }
}

impl RedisJobStore {
    /// A store on `redis`, keeping finished jobs as `retention` says.
    pub fn new(redis: Redis, retention: Retention) -> Self {
        let r = |name, lua| redis.register_script(name, lua);
        let scripts = Scripts {
            enqueue: r("jobs_enqueue", scripts::ENQUEUE),
            index: r("jobs_index", scripts::INDEX),
            owner_jobs: r("jobs_owner_jobs", scripts::OWNER_JOBS),
            get_many: r("jobs_get_many", scripts::GET_MANY),
            start: r("jobs_start", scripts::START),
            heartbeat: r("jobs_heartbeat", scripts::HEARTBEAT),
            progress: r("jobs_progress", scripts::PROGRESS),
            complete: r("jobs_complete", scripts::COMPLETE),
            complete_next: r("jobs_complete_next", scripts::COMPLETE_NEXT),
            fail: r("jobs_fail", scripts::FAIL),
            release: r("jobs_release", scripts::RELEASE),
            cancel: r("jobs_cancel", scripts::CANCEL),
            promote: r("jobs_promote", scripts::PROMOTE),
            claim: r("jobs_claim", scripts::CLAIM),
            stats: r("jobs_stats", scripts::STATS),
            ensure_group: r("jobs_ensure_group", scripts::ENSURE_GROUP),
            drop_entry: r("jobs_drop_entry", scripts::DROP_ENTRY),
            forget_consumer: r("jobs_forget_consumer", scripts::FORGET_CONSUMER),
            take_rate: r("jobs_take_rate", scripts::TAKE_RATE),
            refund_rate: r("jobs_refund_rate", scripts::REFUND_RATE),
            use_ticket: r("jobs_use_ticket", scripts::USE_TICKET),
        };
        Self {
            pubsub: RedisPubSub::new(redis.clone()),
            redis,
            retention,
            scripts,
            readers: Mutex::default(),
            claim_cursors: std::sync::Mutex::default(),
        }
    }

    /// `<prefix>q:{<queue>}:`: what every key of the queue starts with.
    fn queue_prefix(&self, queue: &str) -> String {
        self.redis.key(&format!("q:{{{queue}}}:"))
    }

    fn key(&self, queue: &str, suffix: &str) -> String {
        let mut key = self.queue_prefix(queue);
        key.push_str(suffix);
        key
    }

    fn job_key(&self, queue: &str, id: Uuid) -> String {
        self.key(queue, &format!("job:{id}"))
    }

    fn channel(&self, id: Uuid) -> Arg {
        self.channel_arg(&events_channel(id))
    }

    /// A channel (or a channel's prefix) as the scripts take it: marked `?` on one Redis node,
    /// where `PUBSUB NUMSUB` counts every subscriber, so that a change nobody watches is not
    /// published (see `publish` in [`scripts`]). On a Cluster a subscriber may be on another
    /// node, so every change is published.
    fn channel_arg(&self, channel: &str) -> Arg {
        let full = self.redis.key(channel);
        Arg::Str(if self.redis.is_clustered() { full } else { format!("?{full}") })
    }

    fn owner_index(&self, owner: Uuid) -> String {
        self.redis.key(&format!("jobs:{{u:{owner}}}"))
    }

    fn ticket_key(&self, hash: &str) -> String {
        self.redis.key(&format!("jobs:ticket:{{{hash}}}"))
    }

    async fn reader(&self, queue: &str, consumer: &str) -> Arc<BlockingConnection> {
        let mut readers = self.readers.lock().await;
        readers
            .entry((queue.to_owned(), consumer.to_owned()))
            .or_insert_with(|| Arc::new(self.redis.blocking_connection()))
            .clone()
    }

    /// Runs START for a delivered or claimed entry.
    async fn start(&self, queue: &str, entry: &str, id: &str, consumer: &str) -> Result<Option<Delivery>, RedisError> {
        let Ok(id) = id.parse::<Uuid>() else { return Ok(None) };
        let retention = &self.retention;
        let keys = vec![
            self.job_key(queue, id),
            self.key(queue, "stream"),
            self.key(queue, "failed"),
            self.key(queue, "paused"),
            self.key(queue, &format!("params:{id}")),
        ];
        let args = vec![
            Arg::from(entry),
            Arg::from(consumer),
            self.channel(id),
            ms(retention.ttl),
            Arg::Int(i64::from(retention.keep_failed)),
            Arg::Str(id.to_string()),
            Arg::Str(self.queue_prefix(queue)),
            ms(INFRA_TTL),
        ];
        let mut reply = self.redis.eval(&self.scripts.start, keys, args).await?.into_array().into_iter();
        if reply.next().and_then(|r| r.as_i64()) != Some(1) {
            return Ok(None);
        }
        started(reply).map(Some)
    }

    /// The ARGV every worker write starts with: lease, channel, id, prefix, retention, keep, infra.
    fn worker_args(&self, queue: &str, id: Uuid, lease: u32, keep: u32) -> Vec<Arg> {
        vec![
            Arg::Int(i64::from(lease)),
            self.channel(id),
            Arg::Str(id.to_string()),
            Arg::Str(self.queue_prefix(queue)),
            ms(self.retention.ttl),
            Arg::Int(i64::from(keep)),
            ms(INFRA_TTL),
        ]
    }

    async fn finish(
        &self,
        queue: &str,
        id: Uuid,
        lease: u32,
        error: &str,
        retry_in: Option<Duration>,
        status: &str,
    ) -> Result<Held, RedisError> {
        let keys = vec![
            self.job_key(queue, id),
            self.key(queue, "stream"),
            self.key(queue, "delayed"),
            self.key(queue, "failed"),
        ];
        let mut args = self.worker_args(queue, id, lease, self.retention.keep_failed);
        args.push(Arg::from(error));
        args.push(Arg::Str(retry_in.map(|d| d.as_millis().max(1).to_string()).unwrap_or_default()));
        args.push(Arg::from(status));
        Ok(applied(&self.redis.eval(&self.scripts.fail, keys, args).await?))
    }
}

#[async_trait]
impl JobStore for RedisJobStore {
    async fn enqueue(&self, job: &NewJob) -> Result<Option<JobRecord>, RedisError> {
        // The owner index first: a listed job whose enqueue then failed is simply not found.
        let member = format!("{}|{}", job.queue, job.id);
        let score = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let index_args = vec![Arg::Str(member), Arg::Int(score), ms(INFRA_TTL), Arg::Int(OWNER_INDEX_CAP as i64)];
        self.redis.eval(&self.scripts.index, vec![self.owner_index(job.owner)], index_args).await?;
        let keys = vec![
            self.job_key(&job.queue, job.id),
            self.key(&job.queue, "stream"),
            self.key(&job.queue, &format!("params:{}", job.id)),
            self.key(&job.queue, &format!("open:{}", job.owner)),
        ];
        let args = vec![
            Arg::Str(job.id.to_string()),
            Arg::Str(job.owner.to_string()),
            Arg::from(job.kind.as_str()),
            Arg::from(job.params.as_str()),
            Arg::Int(i64::from(job.max_attempts)),
            ms(INFRA_TTL),
            Arg::Str(self.queue_prefix(&job.queue)),
            Arg::Int(i64::from(job.max_open)),
        ];
        let record = self.redis.eval(&self.scripts.enqueue, keys, args).await?;
        if record == Reply::Nil {
            return Ok(None);
        }
        JobRecord::from_fields(&fields(record)).map(Some).ok_or_else(unexpected)
    }

    async fn get(&self, queue: &str, id: Uuid) -> Result<Option<JobRecord>, RedisError> {
        let reply = self.redis.eval(&self.scripts.get_many, vec![self.job_key(queue, id)], Vec::new()).await?;
        Ok(reply.into_array().into_iter().next().and_then(|r| JobRecord::from_fields(&fields(r))))
    }

    async fn list(&self, owner: Uuid, queues: &[&str], limit: usize) -> Result<Vec<JobRecord>, RedisError> {
        let index = self.owner_index(owner);
        let newest = Arg::Int(limit.min(OWNER_INDEX_CAP) as i64 - 1);
        let members = self.redis.eval(&self.scripts.owner_jobs, vec![index], vec![newest]).await?.into_array();
        let members: Vec<String> = members.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect();
        let mut by_queue: HashMap<&str, Vec<Uuid>> = HashMap::new();
        let mut order = Vec::new();
        for member in &members {
            let Some((queue, id)) = member.split_once('|') else { continue };
            let (Some(queue), Ok(id)) = (queues.iter().find(|q| **q == queue), id.parse::<Uuid>()) else { continue };
            by_queue.entry(queue).or_default().push(id);
            order.push(id);
        }
        // One script per queue (its records share a slot), all sent at once.
        let reads = by_queue.iter().map(|(queue, ids)| {
            let keys = ids.iter().map(|id| self.job_key(queue, *id)).collect();
            self.redis.eval(&self.scripts.get_many, keys, Vec::new())
        });
        let mut found: HashMap<Uuid, JobRecord> = HashMap::new();
        for reply in futures::future::join_all(reads).await {
            for record in reply?.into_array() {
                if let Some(record) = JobRecord::from_fields(&fields(record)) {
                    found.insert(record.id, record);
                }
            }
        }
        Ok(order.into_iter().filter_map(|id| found.remove(&id)).filter(|r| r.owner == owner).collect())
    }

    async fn fetch(&self, queue: &str, consumer: &str, block: Duration) -> Result<Option<Delivery>, RedisError> {
        let reader = self.reader(queue, consumer).await;
        let stream = self.key(queue, "stream");
        let entry = match reader.read_group(&stream, "workers", consumer, block.min(self.redis.max_block())).await {
            Ok(entry) => entry,
            Err(RedisError::Command(message)) if message.contains("NOGROUP") => {
                self.redis.eval(&self.scripts.ensure_group, vec![stream], vec![ms(INFRA_TTL)]).await?;
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let Some((entry, entry_fields)) = entry else { return Ok(None) };
        let id = entry_fields.iter().find(|(k, _)| k == "id").map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        match id.filter(|id| id.parse::<Uuid>().is_ok()) {
            Some(id) => self.start(queue, &entry, &id, consumer).await,
            // Not one of ours: acknowledged and dropped, or it would be reclaimed forever.
            None => {
                self.redis.eval(&self.scripts.drop_entry, vec![stream], vec![Arg::Str(entry)]).await?;
                Ok(None)
            }
        }
    }

    async fn heartbeat(&self, queue: &str, id: Uuid, lease: u32, consumer: &str) -> Result<Held, RedisError> {
        let keys = vec![self.job_key(queue, id), self.key(queue, "stream")];
        let args = vec![Arg::Int(i64::from(lease)), Arg::from(consumer)];
        held(self.redis.eval(&self.scripts.heartbeat, keys, args).await?)
    }

    async fn progress(&self, queue: &str, id: Uuid, lease: u32, progress: u8) -> Result<Held, RedisError> {
        let args = vec![Arg::Int(i64::from(lease)), Arg::Int(i64::from(progress.min(100))), self.channel(id)];
        held(self.redis.eval(&self.scripts.progress, vec![self.job_key(queue, id)], args).await?)
    }

    async fn complete(&self, queue: &str, id: Uuid, lease: u32, result_type: Option<&str>) -> Result<Held, RedisError> {
        let keys = vec![self.job_key(queue, id), self.key(queue, "stream"), self.key(queue, "completed")];
        let mut args = self.worker_args(queue, id, lease, self.retention.keep_completed);
        args.push(Arg::from(result_type.unwrap_or_default()));
        Ok(applied(&self.redis.eval(&self.scripts.complete, keys, args).await?))
    }

    async fn complete_and_next(
        &self,
        queue: &str,
        id: Uuid,
        lease: u32,
        result_type: Option<&str>,
        consumer: &str,
    ) -> Result<(Held, Option<Delivery>), RedisError> {
        let keys = vec![
            self.job_key(queue, id),
            self.key(queue, "stream"),
            self.key(queue, "completed"),
            self.key(queue, "failed"),
            self.key(queue, "paused"),
        ];
        let mut args = self.worker_args(queue, id, lease, self.retention.keep_completed);
        args.push(Arg::from(result_type.unwrap_or_default()));
        args.push(Arg::from(consumer));
        args.push(Arg::Int(i64::from(self.retention.keep_failed)));
        args.push(self.channel_arg(EVENTS_CHANNEL_PREFIX));
        let mut reply = self.redis.eval(&self.scripts.complete_next, keys, args).await?.into_array().into_iter();
        let held = applied(&reply.next().ok_or_else(unexpected)?);
        let next = if reply.len() > 0 { Some(started(reply)?) } else { None };
        Ok((held, next))
    }

    async fn fail(
        &self,
        queue: &str,
        id: Uuid,
        lease: u32,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<Held, RedisError> {
        self.finish(queue, id, lease, error, retry_in, "failed").await
    }

    async fn cancelled(&self, queue: &str, id: Uuid, lease: u32) -> Result<Held, RedisError> {
        self.finish(queue, id, lease, "cancelled while running", None, "cancelled").await
    }

    async fn release(&self, queue: &str, id: Uuid, lease: u32) -> Result<Held, RedisError> {
        let keys = vec![self.job_key(queue, id), self.key(queue, "stream"), self.key(queue, "failed")];
        let args = self.worker_args(queue, id, lease, self.retention.keep_failed);
        Ok(applied(&self.redis.eval(&self.scripts.release, keys, args).await?))
    }

    async fn cancel(&self, queue: &str, id: Uuid) -> Result<CancelOutcome, RedisError> {
        let retention = &self.retention;
        let keys = vec![
            self.job_key(queue, id),
            self.key(queue, "stream"),
            self.key(queue, "delayed"),
            self.key(queue, "failed"),
        ];
        let args = vec![
            self.channel(id),
            Arg::Str(id.to_string()),
            Arg::Str(self.queue_prefix(queue)),
            ms(retention.ttl),
            Arg::Int(i64::from(retention.keep_failed)),
            ms(INFRA_TTL),
        ];
        let mut reply = self.redis.eval(&self.scripts.cancel, keys, args).await?.into_array().into_iter();
        let outcome = reply.next().and_then(|r| r.as_i64()).ok_or_else(unexpected)?;
        let mut record = || reply.next().and_then(|r| JobRecord::from_fields(&fields(r))).ok_or_else(unexpected);
        Ok(match outcome {
            0 => CancelOutcome::NotFound,
            1 => CancelOutcome::Cancelled(record()?),
            2 => CancelOutcome::Requested(record()?),
            _ => CancelOutcome::Finished(record()?),
        })
    }

    async fn promote(&self, queue: &str) -> Result<u64, RedisError> {
        let keys = vec![self.key(queue, "delayed"), self.key(queue, "stream")];
        let args = vec![Arg::Str(self.queue_prefix(queue)), ms(INFRA_TTL)];
        let n = self.redis.eval(&self.scripts.promote, keys, args).await?;
        Ok(n.as_i64().and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    async fn reclaim(
        &self,
        queue: &str,
        consumer: &str,
        idle: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, RedisError> {
        let cursor = self
            .claim_cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
            .cloned()
            .unwrap_or_else(|| "0-0".into());
        let keys = vec![self.key(queue, "stream"), self.key(queue, "paused")];
        let args = vec![Arg::from(consumer), ms(idle), Arg::Int(max.clamp(1, 100) as i64), Arg::Str(cursor)];
        let claimed = self.redis.eval(&self.scripts.claim, keys, args).await?.into_array();
        let mut it = claimed.iter();
        if let Some(next) = it.next().and_then(Reply::as_str) {
            self.claim_cursors.lock().unwrap_or_else(|p| p.into_inner()).insert(queue.to_owned(), next.to_owned());
        }
        let mut out = Vec::new();
        while let (Some(entry), Some(id)) = (it.next(), it.next()) {
            let (Some(entry), Some(id)) = (entry.as_str(), id.as_str()) else { continue };
            // Attempts already started are handed to the caller even when a later one fails.
            match self.start(queue, entry, id, consumer).await {
                Ok(Some(delivery)) => out.push(delivery),
                Ok(None) => {}
                Err(err) if out.is_empty() => return Err(err),
                Err(err) => {
                    tracing::debug!(queue, error = %err, "could not take over every stalled job; the rest next time");
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, RedisError> {
        let keys = ["stream", "delayed", "completed", "failed", "paused"].iter().map(|s| self.key(queue, s)).collect();
        let reply = self.redis.eval(&self.scripts.stats, keys, Vec::new()).await?.into_array();
        let n = |i: usize| reply.get(i).and_then(Reply::as_i64).map(|v| v.max(0) as u64).ok_or_else(unexpected);
        Ok(QueueStats {
            waiting: n(0)?,
            active: n(1)?,
            delayed: n(2)?,
            completed: n(3)?,
            failed: n(4)?,
            paused: n(5)? == 1,
        })
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), RedisError> {
        let key = self.key(queue, "paused");
        if paused {
            self.redis.set(&key, b"1", INFRA_TTL, false).await.map(drop)
        } else {
            self.redis.del(vec![key]).await?;
            self.pubsub.publish(&resumed_channel(queue), b"1").await
        }
    }

    async fn is_paused(&self, queue: &str) -> Result<bool, RedisError> {
        Ok(self.redis.get(&self.key(queue, "paused")).await?.is_some())
    }

    async fn wait_resumed(&self, queue: &str, at_most: Duration) -> Result<(), RedisError> {
        // Subscribed first, the flag read after: a resume between the two is not missed.
        let mut resumed = self.pubsub.subscribe(&resumed_channel(queue)).await?;
        if self.is_paused(queue).await? {
            let _ = tokio::time::timeout(at_most, resumed.recv()).await;
        }
        Ok(())
    }

    async fn take_rate(&self, queue: &str, max: u32, per: Duration) -> Result<Option<Duration>, RedisError> {
        let args = vec![Arg::Int(i64::from(max)), ms(per)];
        let wait = self.redis.eval(&self.scripts.take_rate, vec![self.key(queue, "rate")], args).await?;
        Ok(match wait.as_i64() {
            Some(0) | None => None,
            Some(ms) => Some(Duration::from_millis(ms.max(1) as u64)),
        })
    }

    async fn refund_rate(&self, queue: &str, _per: Duration) -> Result<(), RedisError> {
        self.redis.eval(&self.scripts.refund_rate, vec![self.key(queue, "rate")], Vec::new()).await.map(drop)
    }

    async fn put_ticket(&self, hash: &str, value: &str, ttl: Duration) -> Result<(), RedisError> {
        self.redis.set(&self.ticket_key(hash), value.as_bytes(), ttl, false).await.map(drop)
    }

    async fn use_ticket(&self, hash: &str, reconnect: bool, keep: Duration) -> Result<Option<String>, RedisError> {
        let args = vec![Arg::from(if reconnect { "1" } else { "0" }), ms(keep)];
        let reply = self.redis.eval(&self.scripts.use_ticket, vec![self.ticket_key(hash)], args).await?;
        Ok(reply.as_str().map(str::to_owned))
    }

    async fn subscribe(&self, id: Uuid) -> Result<JobEvents, RedisError> {
        let subscription = self.pubsub.subscribe(&events_channel(id)).await?;
        Ok(record_events(subscription))
    }

    fn is_available(&self) -> bool {
        self.redis.is_reachable()
    }

    async fn close_readers(&self) {
        let readers: Vec<_> = self.readers.lock().await.drain().collect();
        for ((queue, consumer), _) in &readers {
            let stream = self.key(queue, "stream");
            if let Err(err) =
                self.redis.eval(&self.scripts.forget_consumer, vec![stream], vec![Arg::from(consumer.as_str())]).await
            {
                tracing::debug!(queue, error = %err, "could not remove a stopped consumer from its group");
            }
        }
        futures::future::join_all(readers.iter().map(|(_, r)| r.close())).await;
    }
}
