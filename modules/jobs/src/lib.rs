//! The JobsModule: background jobs that survive restarts and crashes, followed live.
//!
//! - The status register and the queue live together in the [`JobStore`](store::JobStore) port,
//!   so submitting is atomic with the record and every state change is one atomic step that
//!   also publishes the job's new state. The Redis adapter is Redis Streams with one consumer
//!   group per queue (at-least-once), retries in a sorted set, every key of a queue under its
//!   `{<queue>}` hash tag (cluster-safe); the memory adapter has the same semantics in process. One contract
//!   suite runs on both.
//! - Attempts are leases: a worker's writes count only while the record still has its attempt,
//!   so a job reclaimed from a stalled or dead worker (visibility timeout, heartbeats) cannot be
//!   overwritten by the old one. Poison jobs fail for good after `max_attempts`.
//! - [`Workers`] run inside `app serve` (by default) or alone in `app worker`: per-queue
//!   concurrency and rate limit, exponential or fixed backoff with jitter, graceful shutdown
//!   (finish or hand back), pause and resume by themselves while Redis is away.
//! - Job types are one [`JobHandler`] impl each, registered in the [`JobRegistry`] by the module
//!   that owns the work (this crate knows no job type).
//! - Result documents live in the SQL database ([`results`]), written in chunks while the job
//!   runs and streamed to the client, so Redis holds none of their bytes and no process holds
//!   one whole.
//! - `JobsApi` (`/api/v1/jobs`, progress as Server-Sent Events with bearer or single-use
//!   tickets) and `QueuesApi` (`/api/v1/admin/queues`).
//!
//! Depends on `core`, `redis` and `database`; names no feature.

mod api;
mod config;
mod error;
mod handler;
mod model;
mod module;
pub mod results;
mod service;
pub mod store;
mod worker;

pub use api::{JobDto, JobsApi, QueuesApi};
pub use config::{JobsConfig, QueueConfig};
pub use error::JobsError;
pub use handler::{JobContext, JobDoc, JobError, JobHandler, JobOutput, JobRegistry, ResultWriter, queue_of};
pub use model::{
    Backoff, BackoffKind, CancelOutcome, Delivery, Held, JobRecord, JobStatus, NewJob, QueueStats, Retention,
};
pub use module::{JobStoreBinding, JobsContainer, JobsModule, JobsServiceComponent, JobsServiceParams};
pub use service::{JobPage, JobsService, ResultDownload, StreamEvent};
pub use worker::Workers;
