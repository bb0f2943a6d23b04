//! Job types: one [`JobHandler`] impl each, registered by the module that owns the work (as
//! NestJS's `BullModule.registerQueue` and a processor in the feature):
//!
//! ```ignore
//! ctx.get::<JobRegistry>()?.register(ReportBuild::new(reports.clone()));
//! ```

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use app_core::FieldError;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{results::JobResults, store::JobStore};

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The attempt failed; it is retried while attempts remain.
    #[error("{0}")]
    Failed(String),
    /// The attempt failed in a way no retry can fix (bad parameters): the job fails for good.
    #[error("{0}")]
    Permanent(String),
    /// The handler stopped because cancellation was requested.
    #[error("cancelled")]
    Cancelled,
}

/// A finished run's result document, written through [`JobContext::result`] (or
/// [`JobContext::json_result`]): what `GET /jobs/{id}/result` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    pub(crate) content_type: String,
    pub(crate) size: u64,
}

impl JobOutput {
    /// Its content type (`application/json`, `text/csv`).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// A result document written as it is made: bytes are buffered and stored a chunk at a time
/// (in the SQL database, under this attempt), so a handler that writes page by page holds one
/// chunk, whatever the document's size. At most `jobs.max_result_bytes` in all: beyond, the
/// write fails the job for good.
pub struct ResultWriter<'a> {
    ctx: &'a JobContext,
    content_type: String,
    buffer: Vec<u8>,
    seq: u32,
    size: u64,
}

impl ResultWriter<'_> {
    /// Appends `bytes`; stores every full chunk.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), JobError> {
        self.size += bytes.len() as u64;
        if self.size > self.ctx.limits.max_result_bytes {
            return Err(JobError::Permanent(format!(
                "the result is larger than the {} bytes a result may have (`jobs.max_result_bytes`)",
                self.ctx.limits.max_result_bytes
            )));
        }
        self.buffer.extend_from_slice(bytes);
        while self.buffer.len() >= crate::results::CHUNK_BYTES {
            let rest = self.buffer.split_off(crate::results::CHUNK_BYTES);
            let chunk = std::mem::replace(&mut self.buffer, rest);
            self.store(&chunk).await?;
        }
        Ok(())
    }

    /// Stores what is left; the document, for the handler to return.
    pub async fn finish(mut self) -> Result<JobOutput, JobError> {
        if !self.buffer.is_empty() || self.seq == 0 {
            let last = std::mem::take(&mut self.buffer);
            self.store(&last).await?;
        }
        Ok(JobOutput { content_type: self.content_type, size: self.size })
    }

    async fn store(&mut self, chunk: &[u8]) -> Result<(), JobError> {
        let ctx = self.ctx;
        let expires = crate::results::now_ms() + ctx.limits.kept_ms;
        ctx.results.write_chunk(ctx.id, ctx.lease, self.seq, chunk, expires).await.map_err(|err| {
            tracing::warn!(job = %ctx.id, error = %err, "could not store a result chunk");
            JobError::Failed("the result could not be stored; the job is retried".into())
        })?;
        self.seq += 1;
        Ok(())
    }
}

/// What bounds a run's result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResultLimits {
    /// `jobs.max_result_bytes`.
    pub max_result_bytes: u64,
    /// How long unsealed chunks are kept (`jobs.retention`), in ms.
    pub kept_ms: i64,
}

/// How a job type appears in the spec: the schema of its `params` (checked at submission, from
/// the spec) and the documents its result may be.
#[derive(Debug, Clone, Default)]
pub struct JobDoc {
    /// What the job does, for the spec.
    pub description: &'static str,
    /// The JSON schema of `params` (a `$ref` to one of `components`, or inline); `None`: any
    /// object.
    pub params: Option<serde_json::Value>,
    /// The result documents, by media type (`application/json`, `text/csv`).
    pub results: Vec<(&'static str, serde_json::Value)>,
    /// The component schemas `params` and `results` refer to.
    pub components: serde_json::Map<String, serde_json::Value>,
}

/// A kind of job.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The job type clients submit (`reports.build`); its queue is named after it.
    fn kind(&self) -> &'static str;

    /// How it appears in the spec.
    fn doc(&self) -> JobDoc {
        JobDoc::default()
    }

    /// Checks the parameters at submission (400 with the field errors, nothing queued).
    fn validate(&self, params: &serde_json::Value) -> Result<(), Vec<FieldError>>;

    /// Does the work. Report progress through `ctx` and stop early when it says so (cancelled,
    /// or the attempt was taken over). Runs may repeat (delivery is at least once): a run must be
    /// safe to do again, so an attempt that died halfway and is run anew leaves no duplicates.
    async fn run(&self, ctx: &JobContext, params: serde_json::Value) -> Result<Option<JobOutput>, JobError>;
}

/// The queue of a job type: its name with dots as underscores (`reports_build`).
pub fn queue_of(kind: &str) -> String {
    kind.replace('.', "_")
}

/// What a running handler knows about its attempt and can tell the world.
pub struct JobContext {
    /// The job.
    pub id: Uuid,
    /// Who submitted it.
    pub owner: Uuid,
    /// The attempt (1-based).
    pub attempt: u32,
    /// The lease this attempt's writes carry (its fencing token).
    pub(crate) lease: u32,
    /// When the job was submitted (epoch ms), e.g. to derive stable ids from.
    pub created_ms: i64,
    pub(crate) queue: String,
    pub(crate) store: Arc<dyn JobStore>,
    pub(crate) results: Arc<dyn JobResults>,
    pub(crate) limits: ResultLimits,
    /// Cancelled when the job should stop: cancellation requested, or the attempt taken over.
    pub(crate) stop: CancellationToken,
    pub(crate) cancel_requested: CancellationToken,
    /// Set when the store says another attempt holds the job now.
    pub(crate) lost: std::sync::atomic::AtomicBool,
    pub(crate) last_progress: std::sync::atomic::AtomicU8,
}

impl JobContext {
    /// Starts the run's result document, of `content_type`.
    pub fn result(&self, content_type: &str) -> ResultWriter<'_> {
        ResultWriter { ctx: self, content_type: content_type.to_owned(), buffer: Vec::new(), seq: 0, size: 0 }
    }

    /// A small JSON result document (a report), written at once.
    pub async fn json_result(&self, value: &serde_json::Value) -> Result<JobOutput, JobError> {
        let mut out = self.result("application/json");
        out.write(&serde_json::to_vec(value).unwrap_or_default()).await?;
        out.finish().await
    }

    /// Reports progress (0-100). Only changes are written (and published); a job that is no
    /// longer this attempt's learns it here too ([`should_stop`](Self::should_stop)).
    pub async fn progress(&self, percent: u8) {
        let percent = percent.min(100);
        if self.last_progress.swap(percent, std::sync::atomic::Ordering::Relaxed) == percent {
            return;
        }
        match self.store.progress(&self.queue, self.id, self.lease, percent).await {
            Ok(crate::Held::Yes { cancel_requested }) => {
                if cancel_requested {
                    self.cancel_requested.cancel();
                    self.stop.cancel();
                }
            }
            Ok(crate::Held::Lost) => {
                self.lost.store(true, std::sync::atomic::Ordering::Relaxed);
                self.stop.cancel();
            }
            // Progress is informational: a store hiccup does not stop the work.
            Err(err) => tracing::debug!(job = %self.id, error = %err, "could not record progress"),
        }
    }

    /// Whether the handler should stop now (between items): cancellation was requested, or the
    /// attempt was taken over by another worker. (At shutdown a run is given time to finish,
    /// then dropped and handed back.)
    pub fn should_stop(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Whether the stop is a cancellation request (return [`JobError::Cancelled`] then).
    pub fn cancellation_requested(&self) -> bool {
        self.cancel_requested.is_cancelled()
    }

    /// The error to return when [`should_stop`](Self::should_stop) says so.
    pub fn stopped(&self) -> JobError {
        if self.cancellation_requested() { JobError::Cancelled } else { JobError::Failed("interrupted".into()) }
    }
}

/// The registered job types. One registry per app, shared: the jobs module provides it, the
/// modules after it register their types while the app is built, and the service and the
/// workers read it once the app runs.
#[derive(Clone, Default)]
pub struct JobRegistry {
    handlers: Arc<RwLock<BTreeMap<&'static str, Arc<dyn JobHandler>>>>,
}

impl JobRegistry {
    /// No job types.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a job type (a later registration of the same type replaces it).
    pub fn register(&self, handler: impl JobHandler) -> &Self {
        self.register_shared(Arc::new(handler))
    }

    /// Registers a shared handler.
    pub fn register_shared(&self, handler: Arc<dyn JobHandler>) -> &Self {
        self.handlers.write().unwrap_or_else(|p| p.into_inner()).insert(handler.kind(), handler);
        self
    }

    /// The handler of `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.read().unwrap_or_else(|p| p.into_inner()).get(kind).cloned()
    }

    /// Every registered type.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.read().unwrap_or_else(|p| p.into_inner()).keys().copied().collect()
    }

    /// Every registered type with its spec entry.
    pub fn docs(&self) -> Vec<(&'static str, JobDoc)> {
        self.handlers.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(kind, h)| (*kind, h.doc())).collect()
    }

    /// Every queue (one per type).
    pub fn queues(&self) -> Vec<String> {
        self.kinds().into_iter().map(queue_of).collect()
    }
}

impl std::fmt::Debug for JobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds()).finish()
    }
}
