//! The job store port: the status register and the queue in one place, so every state change
//! of a job is one atomic step on one queue's keys, and every change publishes the job's new
//! state (the SSE streams' events).
//!
//! Delivery is at least once. A worker holds an attempt (`attempts` is the lease): every write
//! it makes passes the attempt it holds, and counts only while the record still has it, so a
//! worker whose job was reclaimed (it stalled past the visibility timeout, or died) cannot
//! overwrite the newer attempt's state.

mod memory;
mod redis;
mod scripts;

use std::time::Duration;

use app_redis::RedisError;
use async_trait::async_trait;
use futures::stream::BoxStream;
use shaku::Interface;
use uuid::Uuid;

pub use memory::MemoryJobStore;
pub use redis::{OWNER_INDEX_CAP, RedisJobStore};

#[allow(unused_imports)]
use crate::Retention;
use crate::{CancelOutcome, Delivery, Held, JobRecord, NewJob, QueueStats};

/// A job's state changes, as they happen (after the caller subscribed).
pub type JobEvents = BoxStream<'static, JobRecord>;

/// Where jobs live. Finished jobs are kept as the store's [`Retention`] says.
#[async_trait]
pub trait JobStore: Interface {
    /// Creates the record (pending) and queues the job, atomically, unless its owner has
    /// `job.max_open` pending and active jobs of the queue already (`None`); also indexes it
    /// under its owner for listing.
    async fn enqueue(&self, job: &NewJob) -> Result<Option<JobRecord>, RedisError>;

    /// A job's record.
    async fn get(&self, queue: &str, id: Uuid) -> Result<Option<JobRecord>, RedisError>;

    /// The owner's jobs, newest first (at most the newest `limit`), with their queues.
    async fn list(&self, owner: Uuid, queues: &[&str], limit: usize) -> Result<Vec<JobRecord>, RedisError>;

    /// Waits up to `block` for the next job of `queue` and starts an attempt of it for
    /// `consumer` (the worker's unique name). Cancelled and finished jobs are skipped.
    async fn fetch(&self, queue: &str, consumer: &str, block: Duration) -> Result<Option<Delivery>, RedisError>;

    /// Keeps an attempt alive (resets its visibility timeout); whether the worker still holds it.
    async fn heartbeat(&self, queue: &str, id: Uuid, lease: u32, consumer: &str) -> Result<Held, RedisError>;

    /// Records progress (0-100) and publishes it, if the worker still holds the attempt.
    async fn progress(&self, queue: &str, id: Uuid, lease: u32, progress: u8) -> Result<Held, RedisError>;

    /// Completes the attempt, with the content type of its result document if it has one (the
    /// document itself is in the [`JobResults`](crate::results::JobResults), never here). Applying
    /// it twice (a retry after a lost reply) is harmless: the second call finds the job completed
    /// by this lease and reports `Yes`.
    async fn complete(&self, queue: &str, id: Uuid, lease: u32, result_type: Option<&str>) -> Result<Held, RedisError>;

    /// [`complete`](Self::complete), then starts `consumer`'s next job of the queue if one is
    /// waiting (and the queue is not paused), without waiting for one: while a queue has work, a
    /// worker needs one call per job.
    /// (Two steps here; the Redis adapter makes them one script.)
    async fn complete_and_next(
        &self,
        queue: &str,
        id: Uuid,
        lease: u32,
        result_type: Option<&str>,
        consumer: &str,
    ) -> Result<(Held, Option<Delivery>), RedisError> {
        let held = self.complete(queue, id, lease, result_type).await?;
        Ok((held, self.fetch(queue, consumer, Duration::ZERO).await?))
    }

    /// Fails the attempt: with `retry_in`, the job waits that long and is queued again;
    /// without, it fails for good (dead letter).
    async fn fail(
        &self,
        queue: &str,
        id: Uuid,
        lease: u32,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<Held, RedisError>;

    /// Ends the attempt as cancelled (the worker honoured a cancellation request).
    async fn cancelled(&self, queue: &str, id: Uuid, lease: u32) -> Result<Held, RedisError>;

    /// Hands the attempt back (graceful shutdown): the job is queued again at once, and the
    /// attempt does not count.
    async fn release(&self, queue: &str, id: Uuid, lease: u32) -> Result<Held, RedisError>;

    /// Cancels a job: at once when it has not started, by request when it runs.
    async fn cancel(&self, queue: &str, id: Uuid) -> Result<CancelOutcome, RedisError>;

    /// Queues the delayed jobs whose retry is due; how many.
    async fn promote(&self, queue: &str) -> Result<u64, RedisError>;

    /// Takes over the attempts whose worker stopped heartbeating for `idle` (it died or stalled)
    /// and starts a new attempt of each (at most `max`) for `consumer`; a job out of attempts
    /// fails for good instead.
    async fn reclaim(
        &self,
        queue: &str,
        consumer: &str,
        idle: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, RedisError>;

    /// The queue's counts.
    async fn stats(&self, queue: &str) -> Result<QueueStats, RedisError>;

    /// Pauses or resumes the queue (workers take no new jobs while it is paused).
    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), RedisError>;

    /// Whether the queue is paused.
    async fn is_paused(&self, queue: &str) -> Result<bool, RedisError>;

    /// Returns once `queue` is not paused, or after `at_most`: a paused worker waits here, so a
    /// resume (on any instance) starts it at once.
    async fn wait_resumed(&self, queue: &str, at_most: Duration) -> Result<(), RedisError>;

    /// Counts one job start against the queue's rate limit (`max` per `per`, shared by every
    /// worker): `None` when it may start, else how long to wait.
    async fn take_rate(&self, queue: &str, max: u32, per: Duration) -> Result<Option<Duration>, RedisError>;

    /// Gives back a rate-limit slot that was taken but not used (no job was waiting).
    async fn refund_rate(&self, queue: &str, per: Duration) -> Result<(), RedisError>;

    /// Stores a stream ticket (by the hash of its secret) for `ttl`.
    async fn put_ticket(&self, hash: &str, value: &str, ttl: Duration) -> Result<(), RedisError>;

    /// Uses a stream ticket: its value. The first use opens a stream and keeps the ticket for
    /// `keep` more, during which it serves only reconnections (`reconnect`: the client resumes a
    /// stream it had, as `EventSource` does with `Last-Event-ID`); `None` when it never existed,
    /// expired, or was used and this is not a reconnection.
    async fn use_ticket(&self, hash: &str, reconnect: bool, keep: Duration) -> Result<Option<String>, RedisError>;

    /// The job's state changes from now on.
    async fn subscribe(&self, id: Uuid) -> Result<JobEvents, RedisError>;

    /// Whether the store can be reached now.
    fn is_available(&self) -> bool;

    /// Closes the connections the workers' blocking reads used (when the workers stop).
    async fn close_readers(&self) {}
}

/// The records a job's channel carries (each event is the record's fields as a JSON array, as
/// both adapters publish them).
pub(crate) fn record_events(subscription: app_redis::Subscription) -> JobEvents {
    use futures::StreamExt;
    let messages = futures::stream::unfold(subscription, |mut sub| async move { sub.recv().await.map(|m| (m, sub)) });
    messages
        .filter_map(|message| async move {
            let pairs: Vec<String> = serde_json::from_slice(&message.payload).ok()?;
            JobRecord::from_pairs(pairs.iter().map(String::as_str))
        })
        .boxed()
}

/// The channel a job's events are published on.
pub(crate) fn events_channel(id: Uuid) -> String {
    format!("{EVENTS_CHANNEL_PREFIX}{id}")
}

/// The channel a resume is announced on, so paused workers start at once.
pub(crate) fn resumed_channel(queue: &str) -> String {
    format!("q:{{{queue}}}:resumed")
}

/// What every job's events channel starts with (scripts that start a job they found build its
/// channel from it).
pub(crate) const EVENTS_CHANNEL_PREFIX: &str = "jobs:ev:";

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
mod tests;
