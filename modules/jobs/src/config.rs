//! `[jobs]`: workers, retries, visibility, retention, streams.

use std::{collections::BTreeMap, time::Duration};

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Validate};
use serde::{Deserialize, Serialize};

use crate::{Backoff, BackoffKind, Retention};

/// One queue's settings (every job type is a queue of its own).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Jobs one worker process runs at once from this queue.
    pub concurrency: u32,
    /// At most this many jobs start per `rate_per` across all workers (0: no limit).
    pub rate_max: u32,
    /// The rate limit's window.
    #[serde(with = "humantime_serde")]
    pub rate_per: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { concurrency: 2, rate_max: 0, rate_per: Duration::from_secs(1) }
    }
}

/// `[jobs]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Whether `app serve` runs workers too (`app worker` always does). Off: this instance only
    /// accepts and reports jobs; separate `app worker` processes run them.
    pub workers: bool,
    /// Attempts a job gets before it fails for good.
    pub max_attempts: u32,
    /// `exponential` or `fixed` delays between attempts.
    pub backoff: BackoffKind,
    /// The first retry delay (exponential: doubled per attempt), plus up to 20% jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_delay: Duration,
    /// The longest retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// An attempt whose worker has not heartbeaten this long is taken over by another worker
    /// (its worker died or stalled); workers heartbeat every third of it.
    #[serde(with = "humantime_serde")]
    pub visibility_timeout: Duration,
    /// How long a finished job (and its result document) is kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Completed jobs kept per queue at most (older ones go early); 0 removes a job as it completes.
    pub keep_completed: u32,
    /// Failed and cancelled jobs kept per queue at most.
    pub keep_failed: u32,
    /// Pending and active jobs one user may have per job type: a submission beyond answers 409
    /// `QUOTA_EXCEEDED`. It also bounds how many jobs of one user wait ahead of anyone else's.
    pub max_open_per_user: u32,
    /// The largest result document a job may write (bytes); a job whose result would be larger
    /// fails for good. Results live in the SQL database, not in Redis.
    pub max_result_bytes: u64,
    /// How long a worker may finish its running jobs after a shutdown signal before it hands
    /// them back to the queue.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How long an event-stream ticket stays valid (single use).
    #[serde(with = "humantime_serde")]
    pub ticket_ttl: Duration,
    /// The interval of the comment lines that keep an idle event stream open through proxies.
    #[serde(with = "humantime_serde")]
    pub stream_heartbeat: Duration,
    /// Per-queue settings (`[jobs.queues.<queue>]`: each job type is a queue named after it,
    /// dots as underscores); queues not listed get the defaults.
    pub queues: BTreeMap<String, QueueConfig>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: true,
            max_attempts: 3,
            backoff: BackoffKind::Exponential,
            backoff_delay: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            visibility_timeout: Duration::from_secs(30),
            retention: Duration::from_secs(24 * 3600),
            keep_completed: 1000,
            keep_failed: 1000,
            max_open_per_user: 10,
            max_result_bytes: 64 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            ticket_ttl: Duration::from_secs(60),
            stream_heartbeat: Duration::from_secs(15),
            queues: BTreeMap::new(),
        }
    }
}

impl JobsConfig {
    /// The retry policy.
    pub fn backoff(&self) -> Backoff {
        Backoff { kind: self.backoff, delay: self.backoff_delay, max: self.backoff_max }
    }

    /// How finished jobs are kept.
    pub fn retention(&self) -> Retention {
        Retention { ttl: self.retention, keep_completed: self.keep_completed, keep_failed: self.keep_failed }
    }

    /// The settings of `queue`.
    pub fn queue(&self, queue: &str) -> QueueConfig {
        self.queues.get(queue).cloned().unwrap_or_default()
    }
}

impl ConfigSection for JobsConfig {
    const KEY: &'static str = "jobs";

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new("jobs.workers", "whether `app serve` also runs job workers (`app worker` always does)"),
            Row::new("jobs.max_attempts", "attempts a job gets before it fails for good"),
            Row::new("jobs.backoff", "retry delays: `exponential` (doubling) or `fixed`"),
            Row::new("jobs.backoff_delay", "the first retry delay (plus up to 20% jitter)"),
            Row::new("jobs.backoff_max", "the longest retry delay"),
            Row::new(
                "jobs.visibility_timeout",
                "an attempt whose worker has not heartbeaten this long is taken over by another worker",
            ),
            Row::new("jobs.retention", "how long a finished job and its result are kept"),
            Row::new("jobs.keep_completed", "completed jobs kept per queue at most (0: removed as they complete)"),
            Row::new("jobs.keep_failed", "failed and cancelled jobs kept per queue at most"),
            Row::new(
                "jobs.max_result_bytes",
                "the largest result document a job may write, in bytes (results live in the SQL database, not in \
                 Redis); a larger one fails the job",
            ),
            Row::new(
                "jobs.max_open_per_user",
                "pending and active jobs one user may have per job type; a submission beyond answers 409 \
                 `QUOTA_EXCEEDED` (so at most this many of one user's jobs wait ahead of anyone else's)",
            ),
            Row::new(
                "jobs.shutdown_timeout",
                "how long running jobs may finish after SIGTERM before they are handed back",
            ),
            Row::new("jobs.ticket_ttl", "validity of an event-stream ticket (single use)"),
            Row::new("jobs.stream_heartbeat", "interval of the comment lines that keep an idle event stream open"),
            Row::new(
                "jobs.queues.<queue>.concurrency",
                "jobs of this queue one worker process runs at once (every job type is a queue named after it, dots \
                 as underscores); a queue no job type has stops start-up",
            )
            .default_text("`2`"),
            Row::new(
                "jobs.queues.<queue>.rate_max",
                "at most this many jobs of the queue start per `rate_per`, across all workers (0: no limit)",
            )
            .default_text("`0`"),
            Row::new("jobs.queues.<queue>.rate_per", "the queue's rate-limit window").default_text("`1s`"),
        ]
    }
}

impl Validate for JobsConfig {
    fn validate(&self, _profile: Profile) -> Result<(), ConfigIssue> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigIssue::new("jobs.max_attempts", "must be between 1 and 100"));
        }
        if self.backoff_delay.is_zero() || self.backoff_max < self.backoff_delay {
            return Err(ConfigIssue::new(
                "jobs.backoff_max",
                "must be at least `jobs.backoff_delay`, which must be above 0",
            ));
        }
        if !(1..=10_000).contains(&self.max_open_per_user) {
            return Err(ConfigIssue::new("jobs.max_open_per_user", "must be between 1 and 10000"));
        }
        if !(1024..=(1 << 34)).contains(&self.max_result_bytes) {
            return Err(ConfigIssue::new("jobs.max_result_bytes", "must be between 1024 and 17179869184 (16 GiB)"));
        }
        if self.visibility_timeout < Duration::from_secs(1) {
            return Err(ConfigIssue::new("jobs.visibility_timeout", "must be at least 1s"));
        }
        if self.retention < Duration::from_secs(1) {
            return Err(ConfigIssue::new("jobs.retention", "must be at least 1s"));
        }
        if self.ticket_ttl < Duration::from_secs(1) || self.ticket_ttl > Duration::from_secs(3600) {
            return Err(ConfigIssue::new("jobs.ticket_ttl", "must be between 1s and 1h"));
        }
        if self.stream_heartbeat < Duration::from_millis(100) {
            return Err(ConfigIssue::new("jobs.stream_heartbeat", "must be at least 100ms"));
        }
        for (name, queue) in &self.queues {
            if !(1..=256).contains(&queue.concurrency) {
                return Err(ConfigIssue::new(format!("jobs.queues.{name}.concurrency"), "must be between 1 and 256"));
            }
            if queue.rate_max > 0 && queue.rate_per < Duration::from_millis(10) {
                return Err(ConfigIssue::new(format!("jobs.queues.{name}.rate_per"), "must be at least 10ms"));
            }
        }
        Ok(())
    }
}
