//! The in-process [`JobStore`]: the same semantics as the Redis adapter (at-least-once delivery,
//! leases, visibility timeouts, retries, retention), for one instance.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use app_redis::{MemoryPubSub, PubSub, RedisError};
use async_trait::async_trait;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{JobEvents, JobStore, OWNER_INDEX_CAP, events_channel, record_events};
use crate::{CancelOutcome, Delivery, Held, JobRecord, JobStatus, NewJob, QueueStats, Retention};

struct Job {
    record: JobRecord,
    queue: String,
    params: String,
    /// The job's current queue entry, while it has one.
    entry: Option<u64>,
    /// Finished jobs are forgotten after the retention.
    expires_at: Option<Instant>,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<(u64, Uuid)>,
    /// Delivered entries: job, consumer, last delivery or heartbeat.
    delivered: HashMap<u64, (Uuid, String, Instant)>,
    delayed: Vec<(Instant, Uuid)>,
    completed: VecDeque<(Uuid, Instant)>,
    failed: VecDeque<(Uuid, Instant)>,
    paused: bool,
    rate: (u32, Option<Instant>),
}

#[derive(Default)]
struct State {
    jobs: HashMap<Uuid, Job>,
    queues: HashMap<String, Queue>,
    owners: HashMap<Uuid, Vec<Uuid>>,
    tickets: HashMap<String, (String, Instant)>,
    next_entry: u64,
    /// Events to publish once the lock is released.
    outbox: Vec<JobRecord>,
}

/// Jobs inside this process.
pub struct MemoryJobStore {
    state: Mutex<State>,
    arrivals: Notify,
    events: MemoryPubSub,
    retention: Retention,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

impl State {
    fn queue(&mut self, name: &str) -> &mut Queue {
        self.queues.entry(name.to_owned()).or_default()
    }

    fn live_job(&mut self, id: Uuid, now: Instant) -> Option<&mut Job> {
        if self.jobs.get(&id).is_some_and(|j| j.expires_at.is_some_and(|at| at <= now)) {
            self.jobs.remove(&id);
        }
        self.jobs.get_mut(&id)
    }

    fn changed(&mut self, id: Uuid) {
        if let Some(job) = self.jobs.get_mut(&id) {
            job.record.seq += 1;
            job.record.updated_ms = now_ms();
            self.outbox.push(job.record.clone());
        }
    }

    fn push_entry(&mut self, queue: &str, id: Uuid) -> u64 {
        self.next_entry += 1;
        let entry = self.next_entry;
        self.queue(queue).ready.push_back((entry, id));
        entry
    }

    /// Records a finished job and keeps at most `keep` of its kind.
    fn keep(&mut self, queue: &str, id: Uuid, completed: bool, keep: u32, retention: Duration, now: Instant) {
        let q = self.queue(queue);
        let set = if completed { &mut q.completed } else { &mut q.failed };
        set.push_back((id, now));
        set.retain(|(_, at)| *at + retention > now);
        let mut dropped = Vec::new();
        while set.len() > keep as usize {
            if let Some((old, _)) = set.pop_front() {
                dropped.push(old);
            }
        }
        for old in dropped {
            self.jobs.remove(&old);
        }
    }

    /// Ends a job for good (the Redis adapter's `finish`): status, error, entry dropped, kept for
    /// the retention (or fewer).
    fn end(
        &mut self,
        queue: &str,
        id: Uuid,
        status: JobStatus,
        error: Option<String>,
        retention: &Retention,
        now: Instant,
    ) {
        self.unqueue(queue, id);
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.record.status = status;
        job.record.error = error;
        job.record.finished_ms = Some(now_ms());
        job.expires_at = Some(now + retention.ttl);
        self.changed(id);
        let (completed, keep) = match status {
            JobStatus::Completed => (true, retention.keep_completed),
            _ => (false, retention.keep_failed),
        };
        self.keep(queue, id, completed, keep, retention.ttl, now);
    }

    /// Starts an attempt for a delivered entry (START of the Redis adapter).
    fn start(
        &mut self,
        queue: &str,
        entry: u64,
        id: Uuid,
        consumer: &str,
        retention: &Retention,
        now: Instant,
    ) -> Option<Delivery> {
        let current =
            self.live_job(id, now).map(|j| (j.entry, j.record.status, j.record.attempts, j.record.max_attempts));
        let Some((Some(job_entry), status, attempts, max)) = current else {
            self.queue(queue).delivered.remove(&entry);
            return None;
        };
        if job_entry != entry || !matches!(status, JobStatus::Pending | JobStatus::Active) {
            self.queue(queue).delivered.remove(&entry);
            return None;
        }
        if self.jobs.get(&id)?.record.cancel_requested {
            self.end(queue, id, JobStatus::Cancelled, Some("cancelled while running".into()), retention, now);
            return None;
        }
        if status == JobStatus::Active && attempts >= max {
            let error = Some("the worker running the last attempt stopped".into());
            self.end(queue, id, JobStatus::Failed, error, retention, now);
            return None;
        }
        let job = self.jobs.get_mut(&id)?;
        job.record.status = JobStatus::Active;
        job.record.attempts = attempts + 1;
        job.record.lease += 1;
        job.record.started_ms = Some(now_ms());
        let params = job.params.clone();
        self.queue(queue).delivered.insert(entry, (id, consumer.to_owned(), now));
        self.changed(id);
        let job = self.jobs.get(&id)?;
        Some(Delivery { job: job.record.clone(), params })
    }

    /// The job when `lease` still holds it.
    fn held(&mut self, id: Uuid, lease: u32, now: Instant) -> Option<&mut Job> {
        self.live_job(id, now).filter(|j| j.record.status == JobStatus::Active && j.record.lease == lease)
    }

    fn unqueue(&mut self, queue: &str, id: Uuid) {
        if let Some(entry) = self.jobs.get_mut(&id).and_then(|j| j.entry.take()) {
            let q = self.queue(queue);
            q.delivered.remove(&entry);
            q.ready.retain(|(e, _)| *e != entry);
        }
    }
}

impl MemoryJobStore {
    /// An empty store keeping finished jobs as `retention` says.
    pub fn new(retention: Retention) -> Self {
        Self { state: Mutex::default(), arrivals: Notify::new(), events: MemoryPubSub::new(), retention }
    }

    async fn with<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let (out, events) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let out = f(&mut state, Instant::now());
            (out, std::mem::take(&mut state.outbox))
        };
        for record in events {
            let payload = serde_json::to_vec(&record.to_pairs()).unwrap_or_default();
            let _ = self.events.publish(&events_channel(record.id), &payload).await;
        }
        out
    }

    async fn finish(
        &self,
        queue: &str,
        id: Uuid,
        lease: u32,
        error: &str,
        retry_in: Option<Duration>,
        status: JobStatus,
    ) -> Held {
        let retention = self.retention;
        let held = self
            .with(|state, now| {
                let cancel = state.held(id, lease, now)?.record.cancel_requested;
                match retry_in {
                    // A job whose cancellation was requested is not retried: it ends cancelled.
                    Some(delay) if !cancel => {
                        state.unqueue(queue, id);
                        let job = state.jobs.get_mut(&id)?;
                        job.record.error = Some(error.to_owned());
                        job.record.status = JobStatus::Pending;
                        state.queue(queue).delayed.push((now + delay, id));
                        state.changed(id);
                    }
                    _ => {
                        let status = if cancel { JobStatus::Cancelled } else { status };
                        state.end(queue, id, status, Some(error.to_owned()), &retention, now);
                    }
                }
                Some(())
            })
            .await;
        if held.is_some() { Held::Yes { cancel_requested: false } } else { Held::Lost }
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn enqueue(&self, job: &NewJob) -> Result<Option<JobRecord>, RedisError> {
        let record = self
            .with(|state, now_at| {
                if job.max_open > 0 {
                    let open = state
                        .jobs
                        .values()
                        .filter(|j| j.record.owner == job.owner && j.queue == job.queue)
                        .filter(|j| j.expires_at.is_none_or(|at| at > now_at))
                        .filter(|j| matches!(j.record.status, JobStatus::Pending | JobStatus::Active))
                        .count();
                    if open >= job.max_open as usize {
                        return None;
                    }
                }
                let now = now_ms();
                let record = JobRecord {
                    id: job.id,
                    owner: job.owner,
                    kind: job.kind.clone(),
                    status: JobStatus::Pending,
                    progress: 0,
                    attempts: 0,
                    lease: 0,
                    max_attempts: job.max_attempts,
                    error: None,
                    created_ms: now,
                    updated_ms: now,
                    started_ms: None,
                    finished_ms: None,
                    seq: 0,
                    cancel_requested: false,
                    result_type: None,
                };
                let entry = state.push_entry(&job.queue, job.id);
                let stored = Job {
                    record: record.clone(),
                    queue: job.queue.clone(),
                    params: job.params.clone(),
                    entry: Some(entry),
                    expires_at: None,
                };
                state.jobs.insert(job.id, stored);
                let owned = state.owners.entry(job.owner).or_default();
                owned.push(job.id);
                if owned.len() > OWNER_INDEX_CAP {
                    owned.remove(0);
                }
                Some(record)
            })
            .await;
        if record.is_some() {
            self.arrivals.notify_waiters();
        }
        Ok(record)
    }

    async fn get(&self, queue: &str, id: Uuid) -> Result<Option<JobRecord>, RedisError> {
        Ok(self.with(|state, now| state.live_job(id, now).filter(|j| j.queue == queue).map(|j| j.record.clone())).await)
    }

    async fn list(&self, owner: Uuid, queues: &[&str], limit: usize) -> Result<Vec<JobRecord>, RedisError> {
        Ok(self
            .with(|state, now| {
                let ids: Vec<Uuid> = state
                    .owners
                    .get(&owner)
                    .map(|ids| ids.iter().rev().take(limit).copied().collect())
                    .unwrap_or_default();
                ids.into_iter()
                    .filter_map(|id| {
                        state.live_job(id, now).filter(|j| queues.contains(&j.queue.as_str())).map(|j| j.record.clone())
                    })
                    .collect()
            })
            .await)
    }

    async fn fetch(&self, queue: &str, consumer: &str, block: Duration) -> Result<Option<Delivery>, RedisError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let arrived = self.arrivals.notified();
            let retention = self.retention;
            let delivery = self
                .with(|state, now| {
                    if state.queue(queue).paused {
                        return None;
                    }
                    while let Some((entry, id)) = state.queue(queue).ready.pop_front() {
                        if let Some(delivery) = state.start(queue, entry, id, consumer, &retention, now) {
                            return Some(delivery);
                        }
                    }
                    None
                })
                .await;
            if delivery.is_some() {
                return Ok(delivery);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn heartbeat(&self, queue: &str, id: Uuid, lease: u32, consumer: &str) -> Result<Held, RedisError> {
        Ok(self
            .with(|state, now| {
                let job = state.held(id, lease, now)?;
                let (entry, cancel) = (job.entry?, job.record.cancel_requested);
                state.queue(queue).delivered.insert(entry, (id, consumer.to_owned(), now));
                Some(cancel)
            })
            .await
            .map_or(Held::Lost, |cancel_requested| Held::Yes { cancel_requested }))
    }

    async fn progress(&self, _queue: &str, id: Uuid, lease: u32, progress: u8) -> Result<Held, RedisError> {
        Ok(self
            .with(|state, now| {
                let job = state.held(id, lease, now)?;
                let cancel = job.record.cancel_requested;
                if job.record.progress != progress.min(100) {
                    job.record.progress = progress.min(100);
                    state.changed(id);
                }
                Some(cancel)
            })
            .await
            .map_or(Held::Lost, |cancel_requested| Held::Yes { cancel_requested }))
    }

    async fn complete(&self, queue: &str, id: Uuid, lease: u32, result_type: Option<&str>) -> Result<Held, RedisError> {
        let retention = self.retention;
        let done = self
            .with(|state, now| {
                let job = state.live_job(id, now)?;
                if job.record.lease != lease {
                    return None;
                }
                if job.record.status == JobStatus::Completed {
                    return Some(());
                }
                if job.record.status != JobStatus::Active {
                    return None;
                }
                job.record.status = JobStatus::Completed;
                job.record.progress = 100;
                job.record.error = None;
                job.record.finished_ms = Some(now_ms());
                job.expires_at = Some(now + retention.ttl);
                if let Some(content_type) = result_type {
                    job.record.result_type = Some(content_type.to_owned());
                }
                state.unqueue(queue, id);
                state.changed(id);
                state.keep(queue, id, true, retention.keep_completed, retention.ttl, now);
                Some(())
            })
            .await;
        Ok(if done.is_some() { Held::Yes { cancel_requested: false } } else { Held::Lost })
    }

    async fn fail(
        &self,
        queue: &str,
        id: Uuid,
        lease: u32,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<Held, RedisError> {
        Ok(self.finish(queue, id, lease, error, retry_in, JobStatus::Failed).await)
    }

    async fn cancelled(&self, queue: &str, id: Uuid, lease: u32) -> Result<Held, RedisError> {
        Ok(self.finish(queue, id, lease, "cancelled while running", None, JobStatus::Cancelled).await)
    }

    async fn release(&self, queue: &str, id: Uuid, lease: u32) -> Result<Held, RedisError> {
        let retention = self.retention;
        let released = self
            .with(|state, now| {
                if state.held(id, lease, now)?.record.cancel_requested {
                    state.end(queue, id, JobStatus::Cancelled, Some("cancelled while running".into()), &retention, now);
                    return Some(());
                }
                state.unqueue(queue, id);
                let entry = state.push_entry(queue, id);
                let job = state.jobs.get_mut(&id)?;
                job.entry = Some(entry);
                job.record.status = JobStatus::Pending;
                job.record.attempts = lease.saturating_sub(1);
                state.changed(id);
                Some(())
            })
            .await;
        self.arrivals.notify_waiters();
        Ok(if released.is_some() { Held::Yes { cancel_requested: false } } else { Held::Lost })
    }

    async fn cancel(&self, queue: &str, id: Uuid) -> Result<CancelOutcome, RedisError> {
        let retention = self.retention;
        Ok(self
            .with(|state, now| {
                let Some(job) = state.live_job(id, now).filter(|j| j.queue == queue) else {
                    return CancelOutcome::NotFound;
                };
                match job.record.status {
                    JobStatus::Pending => {
                        state.queue(queue).delayed.retain(|(_, d)| *d != id);
                        state.end(queue, id, JobStatus::Cancelled, None, &retention, now);
                        // The record as it ended (it may be gone already: keep_failed = 0).
                        let ended = state.outbox.last().filter(|r| r.id == id).cloned();
                        ended.map_or(CancelOutcome::NotFound, CancelOutcome::Cancelled)
                    }
                    JobStatus::Active => {
                        job.record.cancel_requested = true;
                        CancelOutcome::Requested(job.record.clone())
                    }
                    _ => CancelOutcome::Finished(job.record.clone()),
                }
            })
            .await)
    }

    async fn promote(&self, queue: &str) -> Result<u64, RedisError> {
        let promoted = self
            .with(|state, now| {
                let q = state.queue(queue);
                let (due, later): (Vec<_>, Vec<_>) = q.delayed.drain(..).partition(|(at, _)| *at <= now);
                q.delayed = later;
                let mut n = 0;
                for (_, id) in due {
                    n += 1;
                    if state.live_job(id, now).is_some_and(|j| j.record.status == JobStatus::Pending) {
                        let entry = state.push_entry(queue, id);
                        if let Some(job) = state.jobs.get_mut(&id) {
                            job.entry = Some(entry);
                        }
                    }
                }
                n
            })
            .await;
        if promoted > 0 {
            self.arrivals.notify_waiters();
        }
        Ok(promoted)
    }

    async fn reclaim(
        &self,
        queue: &str,
        consumer: &str,
        idle: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, RedisError> {
        let retention = self.retention;
        Ok(self
            .with(|state, now| {
                if state.queue(queue).paused {
                    return Vec::new();
                }
                let stale: Vec<(u64, Uuid)> = state
                    .queue(queue)
                    .delivered
                    .iter()
                    .filter(|(_, (_, _, at))| now.duration_since(*at) >= idle)
                    .map(|(entry, (id, _, _))| (*entry, *id))
                    .take(max)
                    .collect();
                stale
                    .into_iter()
                    .filter_map(|(entry, id)| state.start(queue, entry, id, consumer, &retention, now))
                    .collect()
            })
            .await)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, RedisError> {
        let retention = self.retention.ttl;
        Ok(self
            .with(|state, now| {
                let q = state.queue(queue);
                q.completed.retain(|(_, at)| *at + retention > now);
                q.failed.retain(|(_, at)| *at + retention > now);
                QueueStats {
                    waiting: q.ready.len() as u64,
                    active: q.delivered.len() as u64,
                    delayed: q.delayed.len() as u64,
                    completed: q.completed.len() as u64,
                    failed: q.failed.len() as u64,
                    paused: q.paused,
                }
            })
            .await)
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), RedisError> {
        self.with(|state, _| state.queue(queue).paused = paused).await;
        if !paused {
            self.arrivals.notify_waiters();
        }
        Ok(())
    }

    async fn is_paused(&self, queue: &str) -> Result<bool, RedisError> {
        Ok(self.with(|state, _| state.queue(queue).paused).await)
    }

    async fn wait_resumed(&self, queue: &str, at_most: Duration) -> Result<(), RedisError> {
        let resumed = self.arrivals.notified();
        tokio::pin!(resumed);
        resumed.as_mut().enable();
        if self.is_paused(queue).await? {
            let _ = tokio::time::timeout(at_most, resumed).await;
        }
        Ok(())
    }

    async fn take_rate(&self, queue: &str, max: u32, per: Duration) -> Result<Option<Duration>, RedisError> {
        Ok(self
            .with(|state, now| {
                let q = state.queue(queue);
                if q.rate.1.is_none_or(|end| end <= now) {
                    q.rate = (0, Some(now + per));
                }
                let end = q.rate.1.unwrap_or(now);
                if q.rate.0 >= max {
                    return Some((end - now).max(Duration::from_millis(1)));
                }
                q.rate.0 += 1;
                None
            })
            .await)
    }

    async fn refund_rate(&self, queue: &str, _per: Duration) -> Result<(), RedisError> {
        self.with(|state, _| {
            let q = state.queue(queue);
            q.rate.0 = q.rate.0.saturating_sub(1);
        })
        .await;
        Ok(())
    }

    async fn put_ticket(&self, hash: &str, value: &str, ttl: Duration) -> Result<(), RedisError> {
        self.with(|state, now| {
            state.tickets.retain(|_, (_, at)| *at > now);
            state.tickets.insert(hash.to_owned(), (value.to_owned(), now + ttl));
        })
        .await;
        Ok(())
    }

    async fn use_ticket(&self, hash: &str, reconnect: bool, keep: Duration) -> Result<Option<String>, RedisError> {
        Ok(self
            .with(|state, now| {
                let (value, at) = state.tickets.get_mut(hash).filter(|(_, at)| *at > now)?;
                match value.strip_prefix("u|") {
                    Some(used) => reconnect.then(|| used.to_owned()),
                    None => {
                        let fresh = value.clone();
                        *value = format!("u|{fresh}");
                        *at = now + keep;
                        Some(fresh)
                    }
                }
            })
            .await)
    }

    async fn subscribe(&self, id: Uuid) -> Result<JobEvents, RedisError> {
        let subscription = self.events.subscribe(&events_channel(id)).await?;
        Ok(record_events(subscription))
    }

    fn is_available(&self) -> bool {
        true
    }
}
