//! Result documents, kept out of Redis: in the SQL database, in chunks, written while the job
//! runs and served as a stream, so neither the worker nor the server ever holds one whole and
//! Redis (which runs `noeviction`, and which logins need) holds none of their bytes.
//!
//! An attempt writes its chunks under its lease; completing the job seals them (the
//! `job_results` row names the lease whose chunks are the result), so chunks of an attempt that
//! died halfway are never served. Every row expires with the job's retention; a sweep deletes
//! the expired ones.

use std::sync::Arc;

use app_database::{DbError, SqlDatabase};
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use shaku::Component;
use uuid::Uuid;

/// The bytes of one chunk row: big enough that a result of tens of megabytes is a few hundred
/// rows, small enough to hold one per writer and per download.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// How many expired rows one sweep statement deletes (so a sweep never holds a long lock).
const SWEEP_BATCH: i64 = 500;

/// A sealed result: what `GET /jobs/{id}/result` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultMeta {
    /// The lease whose chunks are the document.
    pub lease: u32,
    /// Its content type.
    pub content_type: String,
    /// Its length in bytes.
    pub size: u64,
}

/// What the stored results take, for `/metrics` and the start-up log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResultUsage {
    /// Sealed results kept.
    pub results: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Where result documents live (the SQL database; tests run it on SQLite and PostgreSQL).
#[async_trait]
pub trait JobResults: shaku::Interface {
    /// Stores chunk `seq` of the attempt `lease` of `job`, kept until `expires_ms` unless sealed
    /// (writing it again is harmless).
    async fn write_chunk(&self, job: Uuid, lease: u32, seq: u32, data: &[u8], expires_ms: i64) -> Result<(), DbError>;

    /// Makes the attempt `lease`'s chunks the job's result, kept until `expires_ms`, and drops
    /// the chunks of older attempts; `false` (nothing changed) when a newer attempt sealed its
    /// own already (this one was taken over). One transaction; sealing again is harmless.
    async fn seal(
        &self,
        job: Uuid,
        lease: u32,
        content_type: &str,
        size: u64,
        expires_ms: i64,
    ) -> Result<bool, DbError>;

    /// Drops what the attempt `lease` wrote (it failed, or was cancelled). Best effort: what is
    /// left expires.
    async fn discard(&self, job: Uuid, lease: u32);

    /// The job's sealed result, if it has one that has not expired.
    async fn meta(&self, job: Uuid, now_ms: i64) -> Result<Option<ResultMeta>, DbError>;

    /// Chunk `seq` of the attempt `lease`.
    async fn chunk(&self, job: Uuid, lease: u32, seq: u32) -> Result<Option<Vec<u8>>, DbError>;

    /// Deletes the rows expired at `now_ms`, a batch per statement; how many.
    async fn sweep(&self, now_ms: i64) -> Result<u64, DbError>;

    /// What the sealed results take.
    async fn usage(&self) -> Result<ResultUsage, DbError>;
}

/// The job results in the SQL database.
#[derive(Component)]
#[shaku(interface = JobResults)]
pub struct SqlJobResults {
    #[shaku(inject)]
    db: Arc<dyn SqlDatabase>,
}

impl SqlJobResults {
    /// Results in `db` (outside the container, e.g. tests).
    pub fn new(db: Arc<dyn SqlDatabase>) -> Self {
        Self { db }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.db.database().pool()
    }
}

/// The wall clock in epoch ms (what the rows' expiry is in).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_of(lease: u32) -> i64 {
    i64::from(lease)
}

#[async_trait]
impl JobResults for SqlJobResults {
    async fn write_chunk(&self, job: Uuid, lease: u32, seq: u32, data: &[u8], expires_ms: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO job_result_chunks (job_id, lease, seq, data, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (job_id, lease, seq) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(job.to_string())
        .bind(lease_of(lease))
        .bind(i64::from(seq))
        .bind(data.to_vec())
        .bind(expires_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn seal(
        &self,
        job: Uuid,
        lease: u32,
        content_type: &str,
        size: u64,
        expires_ms: i64,
    ) -> Result<bool, DbError> {
        let id = job.to_string();
        let mut tx = self.pool().begin().await?;
        let sealed = sqlx::query(
            "INSERT INTO job_results (job_id, lease, content_type, size, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (job_id) DO UPDATE SET lease = excluded.lease, content_type = excluded.content_type, \
             size = excluded.size, expires_at = excluded.expires_at WHERE job_results.lease <= excluded.lease",
        )
        .bind(id.clone())
        .bind(lease_of(lease))
        .bind(content_type.to_owned())
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(expires_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if sealed == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE job_result_chunks SET expires_at = $1 WHERE job_id = $2 AND lease = $3")
            .bind(expires_ms)
            .bind(id.clone())
            .bind(lease_of(lease))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM job_result_chunks WHERE job_id = $1 AND lease < $2")
            .bind(id)
            .bind(lease_of(lease))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn discard(&self, job: Uuid, lease: u32) {
        let done = sqlx::query("DELETE FROM job_result_chunks WHERE job_id = $1 AND lease = $2")
            .bind(job.to_string())
            .bind(lease_of(lease))
            .execute(self.pool())
            .await;
        if let Err(err) = done {
            tracing::debug!(job = %job, error = %err, "could not drop a failed attempt's result chunks; they expire");
        }
    }

    async fn meta(&self, job: Uuid, now_ms: i64) -> Result<Option<ResultMeta>, DbError> {
        let row: Option<(i64, String, i64)> =
            sqlx::query_as("SELECT lease, content_type, size FROM job_results WHERE job_id = $1 AND expires_at > $2")
                .bind(job.to_string())
                .bind(now_ms)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(lease, content_type, size)| ResultMeta {
            lease: u32::try_from(lease).unwrap_or_default(),
            content_type,
            size: u64::try_from(size).unwrap_or_default(),
        }))
    }

    async fn chunk(&self, job: Uuid, lease: u32, seq: u32) -> Result<Option<Vec<u8>>, DbError> {
        Ok(sqlx::query_scalar("SELECT data FROM job_result_chunks WHERE job_id = $1 AND lease = $2 AND seq = $3")
            .bind(job.to_string())
            .bind(lease_of(lease))
            .bind(i64::from(seq))
            .fetch_optional(self.pool())
            .await?)
    }

    async fn sweep(&self, now_ms: i64) -> Result<u64, DbError> {
        let mut deleted = 0;
        for table in ["job_result_chunks", "job_results"] {
            loop {
                let sql = sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE expires_at <= $1 AND job_id IN \
                     (SELECT job_id FROM {table} WHERE expires_at <= $1 LIMIT {SWEEP_BATCH})"
                ));
                let done = sqlx::query(sql).bind(now_ms).execute(self.pool()).await?.rows_affected();
                deleted += done;
                if done == 0 {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    async fn usage(&self) -> Result<ResultUsage, DbError> {
        let (results, bytes): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM job_results")
                .fetch_one(self.pool())
                .await?;
        Ok(ResultUsage { results: u64::try_from(results).unwrap_or(0), bytes: u64::try_from(bytes).unwrap_or(0) })
    }
}

/// The chunks of a sealed result, read one at a time as the client takes them (a download holds
/// one chunk and no database connection between reads).
pub fn stream(
    results: Arc<dyn JobResults>,
    job: Uuid,
    meta: &ResultMeta,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let lease = meta.lease;
    futures::stream::try_unfold(0u32, move |seq| {
        let results = results.clone();
        async move {
            match results.chunk(job, lease, seq).await {
                Ok(Some(data)) => Ok(Some((Bytes::from(data), seq + 1))),
                Ok(None) => Ok(None),
                Err(err) => {
                    tracing::warn!(job = %job, error = %err, "a result download failed midway");
                    Err(std::io::Error::other("the result could not be read"))
                }
            }
        }
    })
}
