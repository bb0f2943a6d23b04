//! The logic behind the `/jobs` routes: submission, the owner's view of the register, results,
//! cancellation, stream tickets and the event streams, and the admin view of the queues.

use std::{sync::Arc, time::Duration};

use app_core::{FieldError, pagination::Pagination};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    CancelOutcome, JobRecord, JobRegistry, JobStatus, JobsConfig, JobsError, NewJob, QueueStats,
    handler::queue_of,
    results::JobResults,
    store::{JobStore, OWNER_INDEX_CAP},
};

/// One page of the owner's jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPage {
    /// The jobs on this page, newest first.
    pub items: Vec<JobRecord>,
    /// Matching jobs across all pages.
    pub total: u64,
}

/// What an event stream sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The job's state when the stream opened.
    Snapshot(JobRecord),
    /// A change.
    Progress(JobRecord),
    /// The last event: the job finished.
    Terminal(JobRecord),
}

impl StreamEvent {
    /// The record the event carries.
    pub fn record(&self) -> &JobRecord {
        match self {
            StreamEvent::Snapshot(r) | StreamEvent::Progress(r) | StreamEvent::Terminal(r) => r,
        }
    }
}

/// Whether an event stream's session still lives (`false` once it ended: logout, revocation).
pub type Liveness = Arc<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// A live stream's state between events.
struct Live<S> {
    changes: S,
    last: u64,
    done: bool,
    end: CancellationToken,
    checks: tokio::time::Interval,
    alive: Liveness,
}

/// A completed job's result document, ready to stream.
pub struct ResultDownload {
    /// Its content type.
    pub content_type: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its bytes, a chunk at a time.
    pub body: futures::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>,
}

/// The jobs service.
pub struct JobsService {
    store: Arc<dyn JobStore>,
    results: Arc<dyn JobResults>,
    registry: JobRegistry,
    config: JobsConfig,
    /// Cancelled at shutdown: open event streams end, so they do not hold the server's drain.
    streams_end: CancellationToken,
}

fn ticket_hash(ticket: &str) -> String {
    Sha256::digest(ticket.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl JobsService {
    /// The service over `store`, with the registered job types.
    pub fn new(
        store: Arc<dyn JobStore>,
        results: Arc<dyn JobResults>,
        registry: JobRegistry,
        config: JobsConfig,
    ) -> Self {
        Self { store, results, registry, config, streams_end: CancellationToken::new() }
    }

    /// Where result documents live.
    pub fn results(&self) -> &Arc<dyn JobResults> {
        &self.results
    }

    /// The store (for the workers).
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    /// `[jobs]`.
    pub fn config(&self) -> &JobsConfig {
        &self.config
    }

    /// The job types.
    pub fn registry(&self) -> &JobRegistry {
        &self.registry
    }

    /// Ends every open event stream (called when shutdown begins).
    pub fn end_streams(&self) {
        self.streams_end.cancel();
    }

    fn queues(&self) -> Vec<String> {
        self.registry.queues()
    }

    /// Validates and queues a job.
    pub async fn submit(&self, owner: Uuid, kind: &str, params: serde_json::Value) -> Result<JobRecord, JobsError> {
        let Some(handler) = self.registry.get(kind) else {
            let known = self.registry.kinds().join("`, `");
            return Err(JobsError::Invalid(vec![FieldError::new("type", format!("must be one of `{known}`"))]));
        };
        handler.validate(&params).map_err(|errors| {
            JobsError::Invalid(
                errors.into_iter().map(|e| FieldError::new(format!("params.{}", e.field), e.message)).collect(),
            )
        })?;
        if !self.store.is_available() {
            return Err(JobsError::Unavailable(app_redis::RedisError::Unavailable("not connected".into())));
        }
        let job = NewJob {
            id: Uuid::now_v7(),
            owner,
            kind: kind.to_owned(),
            queue: queue_of(kind),
            params: params.to_string(),
            max_attempts: self.config.max_attempts,
            max_open: self.config.max_open_per_user,
        };
        let limit = self.config.max_open_per_user;
        self.store.enqueue(&job).await?.ok_or(JobsError::QuotaExceeded { limit })
    }

    /// The owner's job (another owner's is `NotFound`).
    pub async fn get(&self, owner: Uuid, id: Uuid) -> Result<JobRecord, JobsError> {
        let queues = self.queues();
        let reads = queues.iter().map(|q| self.store.get(q, id));
        for found in futures::future::join_all(reads).await {
            if let Some(record) = found? {
                return if record.owner == owner { Ok(record) } else { Err(JobsError::NotFound) };
            }
        }
        Err(JobsError::NotFound)
    }

    /// A page of the owner's jobs (the newest 1000 at most), optionally of one status.
    pub async fn list(&self, owner: Uuid, status: Option<JobStatus>, page: Pagination) -> Result<JobPage, JobsError> {
        let queues = self.queues();
        let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
        let mut all = self.store.list(owner, &queues, OWNER_INDEX_CAP).await?;
        if let Some(status) = status {
            all.retain(|r| r.status == status);
        }
        let total = all.len() as u64;
        let items = all.into_iter().skip(page.offset() as usize).take(page.limit() as usize).collect();
        Ok(JobPage { items, total })
    }

    /// Cancels the owner's job: at once when it has not started, cooperatively when it runs.
    pub async fn cancel(&self, owner: Uuid, id: Uuid) -> Result<JobRecord, JobsError> {
        let job = self.get(owner, id).await?;
        match self.store.cancel(&queue_of(&job.kind), id).await? {
            CancelOutcome::Cancelled(record) | CancelOutcome::Requested(record) => Ok(record),
            CancelOutcome::Finished(_) => Err(JobsError::Conflict("The job has already finished")),
            CancelOutcome::NotFound => Err(JobsError::NotFound),
        }
    }

    /// The completed job's result document, streamed from the database.
    pub async fn result(&self, owner: Uuid, id: Uuid) -> Result<ResultDownload, JobsError> {
        let job = self.get(owner, id).await?;
        if job.status != JobStatus::Completed {
            return Err(JobsError::Conflict("The job has not completed; its result is not available"));
        }
        if job.result_type.is_none() {
            return Err(JobsError::NotFound);
        }
        let meta = self.results.meta(id, crate::results::now_ms()).await.map_err(JobsError::Database)?;
        // Only the completing attempt's document (the record's lease) is the result.
        let meta = meta.filter(|m| m.lease == job.lease).ok_or(JobsError::NotFound)?;
        let body = crate::results::stream(self.results.clone(), id, &meta).boxed();
        Ok(ResultDownload { content_type: meta.content_type, size: meta.size, body })
    }

    /// A ticket that opens the job's event stream without a bearer token (for `EventSource`,
    /// which cannot send one), bound to the job and the caller's session: it opens one stream
    /// within `jobs.ticket_ttl`, then serves that stream's reconnections while the job is kept.
    pub async fn ticket(&self, owner: Uuid, session: &str, id: Uuid) -> Result<(String, Duration), JobsError> {
        self.get(owner, id).await?;
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let ticket: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let value = format!("{owner}|{id}|{session}");
        self.store.put_ticket(&ticket_hash(&ticket), &value, self.config.ticket_ttl).await?;
        Ok((ticket, self.config.ticket_ttl))
    }

    /// Redeems a ticket for job `id`: the owner and the session it was issued to. A ticket opens
    /// one stream; after that only reconnections (`reconnect`: the client resumes with
    /// `Last-Event-ID`). Expired, foreign and used tickets are `BadTicket`; the caller checks
    /// that the session still lives.
    pub async fn redeem(&self, ticket: &str, id: Uuid, reconnect: bool) -> Result<(Uuid, String), JobsError> {
        if ticket.len() != 64 || !ticket.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(JobsError::BadTicket);
        }
        let keep = self.config.retention;
        let value = self.store.use_ticket(&ticket_hash(ticket), reconnect, keep).await?.ok_or(JobsError::BadTicket)?;
        let mut parts = value.splitn(3, '|');
        let (Some(owner), Some(job), Some(session)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(JobsError::BadTicket);
        };
        if job != id.to_string() {
            return Err(JobsError::BadTicket);
        }
        Ok((owner.parse().map_err(|_| JobsError::BadTicket)?, session.to_owned()))
    }

    /// The job's events: the current state (unless `after` shows the client has it), then each
    /// change, then the terminal event, then the end. Subscribes before reading the state, so no
    /// change falls in between. The stream also ends when `alive` says its session ended (asked
    /// every `jobs.stream_heartbeat`) or at shutdown. `None` when the client already saw the
    /// terminal event.
    pub async fn events(
        &self,
        owner: Uuid,
        id: Uuid,
        after: Option<u64>,
        alive: Liveness,
    ) -> Result<Option<impl Stream<Item = StreamEvent> + Send + 'static>, JobsError> {
        let changes = self.store.subscribe(id).await?;
        let snapshot = self.get(owner, id).await?;
        let seen = after.unwrap_or(0);
        if snapshot.status.is_terminal() && after.is_some_and(|a| a >= snapshot.seq) {
            return Ok(None);
        }
        let mut first = Vec::new();
        if after.is_none() || snapshot.seq > seen {
            first.push(StreamEvent::Snapshot(snapshot.clone()));
        }
        let done = snapshot.status.is_terminal();
        if done {
            first.push(StreamEvent::Terminal(snapshot.clone()));
        }
        let heartbeat = self.config.stream_heartbeat;
        let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let state = Live { changes, last: snapshot.seq.max(seen), done, end: self.streams_end.clone(), checks, alive };
        let live = futures::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            loop {
                let record = tokio::select! {
                    record = state.changes.next() => record,
                    () = state.end.cancelled() => None,
                    _ = state.checks.tick() => {
                        if (state.alive)().await {
                            continue;
                        }
                        None
                    }
                }?;
                // Events the snapshot already covered, and repeats, are skipped.
                if record.seq <= state.last {
                    continue;
                }
                state.last = record.seq;
                state.done = record.status.is_terminal();
                let event = if state.done { StreamEvent::Terminal(record) } else { StreamEvent::Progress(record) };
                return Some((event, state));
            }
        });
        Ok(Some(futures::stream::iter(first).chain(live)))
    }

    /// Every queue's counts.
    pub async fn queue_stats(&self) -> Result<Vec<(String, QueueStats)>, JobsError> {
        let queues = self.queues();
        let stats = futures::future::join_all(queues.iter().map(|q| self.store.stats(q))).await;
        queues.into_iter().zip(stats).map(|(q, s)| Ok((q, s?))).collect()
    }

    /// Pauses or resumes a queue.
    pub async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), JobsError> {
        if !self.queues().iter().any(|q| q == queue) {
            return Err(JobsError::QueueNotFound);
        }
        Ok(self.store.set_paused(queue, paused).await?)
    }
}
