//! `library.import`: a batch of items validated and added to the submitter's library.

use std::sync::Arc;

use app_core::FieldError;
use app_jobs::{JobContext, JobError, JobHandler, JobOutput};
use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{LibraryItemInput, LibraryService};

/// The most items one import may carry.
pub const MAX_IMPORT_ITEMS: usize = 10_000;

/// Items are validated and inserted in chunks of this many (one transaction each).
const CHUNK: usize = 200;

/// Imports items: `{items: [LibraryItemInput, ...]}`. Each item is validated on its own; the
/// result is `{imported, failed: [{index, code, message}]}`.
///
/// Every item's id is derived from the job and the item's index, and inserting skips ids that
/// exist, so an attempt that died halfway and runs again adds each item exactly once.
pub struct LibraryImport {
    library: Arc<dyn LibraryService>,
}

impl LibraryImport {
    /// The import over the library.
    pub fn new(library: Arc<dyn LibraryService>) -> Self {
        Self { library }
    }
}

/// A stable UUID v7 for item `index` of job `job`: the job's creation time and 74 bits of a
/// hash of (job, index).
fn item_id(job: Uuid, created_ms: i64, index: usize) -> Uuid {
    let digest = Sha256::digest(format!("{job}/{index}").as_bytes());
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(u64::try_from(created_ms).unwrap_or(0), &random).into_uuid()
}

fn failure(index: usize, code: &str, message: String) -> Value {
    json!({"index": index, "code": code, "message": message})
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("`{}` {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

#[async_trait]
impl JobHandler for LibraryImport {
    fn kind(&self) -> &'static str {
        "library.import"
    }

    fn doc(&self) -> app_jobs::JobDoc {
        crate::api::import_doc()
    }

    fn validate(&self, params: &Value) -> Result<(), Vec<FieldError>> {
        match params.get("items").and_then(Value::as_array) {
            None => Err(vec![FieldError::new("items", "must be an array of library items")]),
            Some(items) if items.is_empty() => Err(vec![FieldError::new("items", "must not be empty")]),
            Some(items) if items.len() > MAX_IMPORT_ITEMS => {
                Err(vec![FieldError::new("items", format!("must have at most {MAX_IMPORT_ITEMS} entries"))])
            }
            Some(_) => Ok(()),
        }
    }

    async fn run(&self, ctx: &JobContext, params: Value) -> Result<Option<JobOutput>, JobError> {
        let items = match params.get("items").and_then(Value::as_array) {
            Some(items) => items,
            None => return Err(JobError::Permanent("`items` is missing".into())),
        };
        let total = items.len().max(1);
        let (mut imported, mut failed) = (0u64, Vec::new());
        // Set once the library is full: every later item fails without a write.
        let mut full = false;
        for (chunk_no, chunk) in items.chunks(CHUNK).enumerate() {
            if ctx.should_stop() {
                return Err(ctx.stopped());
            }
            let mut valid = Vec::with_capacity(chunk.len());
            for (offset, raw) in chunk.iter().enumerate() {
                let index = chunk_no * CHUNK + offset;
                match serde_json::from_value::<LibraryItemInput>(raw.clone()) {
                    Err(err) => failed.push(failure(index, "MALFORMED_REQUEST", format!("not a library item: {err}"))),
                    Ok(input) => match input.to_new_item() {
                        Err(errors) => failed.push(failure(index, "VALIDATION_FAILED", describe(&errors))),
                        Ok(item) => valid.push((index, item_id(ctx.id, ctx.created_ms, index), item)),
                    },
                }
            }
            imported += self.insert(ctx, valid, &mut failed, &mut full).await?;
            let done = (chunk_no * CHUNK + chunk.len()) * 100 / total;
            ctx.progress(done.min(99) as u8).await;
        }
        failed.sort_by_key(|f| f["index"].as_u64());
        Ok(Some(ctx.json_result(&json!({"imported": imported, "failed": failed})).await?))
    }
}

impl LibraryImport {
    /// Adds a chunk's valid items (`(index, id, item)`); how many. Once the library is full,
    /// the items that do not fit are reported as failed with `QUOTA_EXCEEDED`, one by one, so
    /// the import fills the library up to its quota and says which items did not make it.
    async fn insert(
        &self,
        ctx: &JobContext,
        valid: Vec<(usize, Uuid, crate::NewItem)>,
        failed: &mut Vec<Value>,
        full: &mut bool,
    ) -> Result<u64, JobError> {
        let write_failed = |err: crate::LibraryError| {
            // The cause stays in the log: the job's error is shown to the client.
            tracing::warn!(job = %ctx.id, error = %err, "an import could not write the library");
            JobError::Failed("the library could not be written; the import is retried".into())
        };
        let quota = |index: usize| failure(index, "QUOTA_EXCEEDED", "the library holds its maximum of items".into());
        if valid.is_empty() {
            return Ok(0);
        }
        if !*full {
            let batch = valid.iter().map(|(_, id, item)| (*id, item.clone())).collect();
            match self.library.import(ctx.owner, batch).await {
                Ok(_) => return Ok(valid.len() as u64),
                Err(crate::LibraryError::QuotaExceeded { .. }) => {}
                Err(err) => return Err(write_failed(err)),
            }
        }
        let mut imported = 0;
        for (index, id, item) in valid {
            if *full {
                failed.push(quota(index));
                continue;
            }
            match self.library.import(ctx.owner, vec![(id, item)]).await {
                Ok(_) => imported += 1,
                Err(crate::LibraryError::QuotaExceeded { .. }) => {
                    *full = true;
                    failed.push(quota(index));
                }
                Err(err) => return Err(write_failed(err)),
            }
        }
        Ok(imported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_are_stable_time_ordered_and_distinct() {
        let job = Uuid::now_v7();
        assert_eq!(item_id(job, 1_764_000_000_000, 3), item_id(job, 1_764_000_000_000, 3));
        assert_ne!(item_id(job, 1_764_000_000_000, 3), item_id(job, 1_764_000_000_000, 4));
        assert_eq!(item_id(job, 1_764_000_000_000, 3).get_version_num(), 7);
    }
}
