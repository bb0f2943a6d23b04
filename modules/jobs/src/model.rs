//! The job record and the values around it.

use std::{collections::HashMap, time::Duration};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker (also between retries).
    Pending,
    /// A worker runs it.
    Active,
    /// Finished successfully.
    Completed,
    /// Finished without success after its last attempt.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl JobStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Active => "active",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(JobStatus::Pending),
            "active" => Some(JobStatus::Active),
            "completed" => Some(JobStatus::Completed),
            "failed" => Some(JobStatus::Failed),
            "cancelled" => Some(JobStatus::Cancelled),
            _ => None,
        }
    }

    /// Whether the job has finished (for good).
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }
}

/// A job as the status register keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// UUID v7.
    pub id: Uuid,
    /// Who submitted it; nobody else sees it.
    pub owner: Uuid,
    /// The job type (and queue), e.g. `reports.build`.
    pub kind: String,
    /// Where it is.
    pub status: JobStatus,
    /// 0 to 100.
    pub progress: u8,
    /// Attempts started so far (the current one included; an attempt handed back at shutdown
    /// does not count).
    pub attempts: u32,
    /// The fencing token of the current attempt: incremented by every start, never lowered. A
    /// worker's writes count only while the record still has the lease its attempt started with.
    pub lease: u32,
    /// Attempts allowed before the job fails for good.
    pub max_attempts: u32,
    /// Why the last attempt failed (or why the job failed).
    pub error: Option<String>,
    /// Epoch ms.
    pub created_ms: i64,
    /// Epoch ms.
    pub updated_ms: i64,
    /// Epoch ms of the current (or last) attempt's start.
    pub started_ms: Option<i64>,
    /// Epoch ms.
    pub finished_ms: Option<i64>,
    /// The number of the last event published for this job (SSE event ids).
    pub seq: u64,
    /// Whether cancellation was requested while it ran.
    pub cancel_requested: bool,
    /// The result document's content type, once there is one.
    pub result_type: Option<String>,
}

impl JobRecord {
    /// From the stored fields (a Redis hash, or the memory adapter's map).
    pub fn from_fields(fields: &HashMap<String, String>) -> Option<Self> {
        let get = |k: &str| fields.get(k).map(String::as_str);
        let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        let opt = |k: &str| get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        Some(JobRecord {
            id: get("id")?.parse().ok()?,
            owner: get("owner")?.parse().ok()?,
            kind: get("type")?.to_owned(),
            status: JobStatus::parse(get("status")?)?,
            progress: num("progress").and_then(|p| u8::try_from(p).ok()).unwrap_or(0).min(100),
            attempts: num("attempts").and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
            lease: num("lease").and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
            max_attempts: num("max").and_then(|a| u32::try_from(a).ok()).unwrap_or(1),
            error: opt("error"),
            created_ms: num("created")?,
            updated_ms: num("updated").unwrap_or_default(),
            started_ms: num("started").filter(|v| *v > 0),
            finished_ms: num("finished").filter(|v| *v > 0),
            seq: num("seq").and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            cancel_requested: get("cancel") == Some("1"),
            result_type: opt("rtype"),
        })
    }

    /// The stored fields (what the Redis hash holds), as a flat `[field, value, ...]` list.
    pub fn to_pairs(&self) -> Vec<String> {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "0".into());
        [
            ("id", self.id.to_string()),
            ("owner", self.owner.to_string()),
            ("type", self.kind.clone()),
            ("status", self.status.as_str().to_owned()),
            ("progress", self.progress.to_string()),
            ("attempts", self.attempts.to_string()),
            ("lease", self.lease.to_string()),
            ("max", self.max_attempts.to_string()),
            ("error", self.error.clone().unwrap_or_default()),
            ("created", self.created_ms.to_string()),
            ("updated", self.updated_ms.to_string()),
            ("started", opt(self.started_ms)),
            ("finished", opt(self.finished_ms)),
            ("seq", self.seq.to_string()),
            ("cancel", if self.cancel_requested { "1" } else { "0" }.to_owned()),
            ("rtype", self.result_type.clone().unwrap_or_default()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect()
    }

    /// From a flat `[field, value, ...]` list (HGETALL's reply, or an event's payload).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut it = pairs.into_iter();
        let mut fields = HashMap::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            fields.insert(k.to_owned(), v.to_owned());
        }
        Self::from_fields(&fields)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// UUID v7, chosen by the service.
    pub id: Uuid,
    /// The submitter.
    pub owner: Uuid,
    /// The job type (`reports.build`).
    pub kind: String,
    /// Its queue (`reports_build`).
    pub queue: String,
    /// The parameters, as JSON.
    pub params: String,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// How many pending and active jobs of this queue the owner may have, this one included
    /// (0: any number).
    pub max_open: u32,
}

/// A job handed to a worker: the record after the attempt started, and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The record (`attempts` is this attempt's lease).
    pub job: JobRecord,
    /// The parameters, as JSON.
    pub params: String,
}

impl Delivery {
    /// The lease this worker holds (its fencing token).
    pub fn lease(&self) -> u32 {
        self.job.lease
    }
}

/// How long to wait before retry `attempt` (1-based: after the first failure, `attempt` is 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffKind {
    /// `delay * 2^(attempt - 1)`, capped.
    Exponential,
    /// `delay` every time.
    Fixed,
}

/// A retry policy: kind, base delay, cap, with up to 20% random jitter added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Exponential or fixed.
    pub kind: BackoffKind,
    /// The base delay.
    pub delay: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before the retry that follows failed attempt `attempt` (without jitter).
    pub fn base(&self, attempt: u32) -> Duration {
        match self.kind {
            BackoffKind::Fixed => self.delay,
            BackoffKind::Exponential => {
                let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
                self.delay.saturating_mul(factor).min(self.max)
            }
        }
    }

    /// [`base`](Self::base) plus up to 20% jitter, so retries of jobs that failed together spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base(attempt);
        let jitter_ms = base.as_millis() as u64 / 5;
        if jitter_ms == 0 { base } else { base + Duration::from_millis(rand::random_range(0..=jitter_ms)) }
    }
}

/// How finished jobs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long a finished record (and its result) is kept.
    pub ttl: Duration,
    /// How many completed jobs a queue keeps at most (older ones are removed early); 0 removes
    /// a job as it completes.
    pub keep_completed: u32,
    /// The same for failed (and cancelled) jobs.
    pub keep_failed: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(24 * 3600), keep_completed: 1000, keep_failed: 1000 }
    }
}

/// A queue's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Waiting for a worker.
    pub waiting: u64,
    /// Being run.
    pub active: u64,
    /// Waiting for a retry.
    pub delayed: u64,
    /// Completed and still kept.
    pub completed: u64,
    /// Failed or cancelled and still kept.
    pub failed: u64,
    /// Whether workers take no new jobs from it.
    pub paused: bool,
}

/// What a worker's write to a job found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The worker still holds the job; `cancel_requested` says whether it should stop.
    Yes {
        /// Cancellation was requested.
        cancel_requested: bool,
    },
    /// The job was reclaimed by another worker (or finished, or cancelled): stop, write nothing.
    Lost,
}

/// What a cancellation request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job had not started: it is cancelled now.
    Cancelled(JobRecord),
    /// The job runs: its worker was asked to stop.
    Requested(JobRecord),
    /// The job had already finished.
    Finished(JobRecord),
    /// No such job.
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_doubles_up_to_its_cap_and_fixed_stays() {
        let b = Backoff { kind: BackoffKind::Exponential, delay: Duration::from_secs(1), max: Duration::from_secs(10) };
        let base: Vec<u64> = (1..=6).map(|a| b.base(a).as_secs()).collect();
        assert_eq!(base, [1, 2, 4, 8, 10, 10]);
        let d = b.delay(3);
        assert!(d >= Duration::from_secs(4) && d <= Duration::from_millis(4_800), "{d:?}");
        let f = Backoff { kind: BackoffKind::Fixed, ..b };
        assert_eq!(f.base(5), Duration::from_secs(1));
        assert_eq!(b.base(u32::MAX), Duration::from_secs(10), "no overflow");
    }

    #[test]
    fn records_parse_from_their_fields() {
        let id = Uuid::now_v7();
        let pairs = [
            "id",
            &id.to_string(),
            "owner",
            &Uuid::nil().to_string(),
            "type",
            "reports.build",
            "status",
            "active",
            "progress",
            "40",
            "attempts",
            "2",
            "max",
            "3",
            "error",
            "",
            "created",
            "1000",
            "updated",
            "2000",
            "started",
            "1500",
            "finished",
            "0",
            "seq",
            "7",
            "cancel",
            "1",
        ]
        .map(str::to_owned);
        let record = JobRecord::from_pairs(pairs.iter().map(String::as_str)).expect("valid");
        assert_eq!((record.status, record.progress, record.attempts, record.seq), (JobStatus::Active, 40, 2, 7));
        assert_eq!((record.error, record.finished_ms, record.started_ms), (None, None, Some(1500)));
        assert!(record.cancel_requested);
        assert!(JobRecord::from_pairs(["id", "nope"]).is_none());
    }
}
