//! `library.export`: the submitter's whole library as one JSON or CSV document.

use std::sync::Arc;

use app_core::{FieldError, pagination::Pagination};
use app_jobs::{JobContext, JobError, JobHandler, JobOutput};
use async_trait::async_trait;
use serde_json::{Value, json};

use crate::{LibraryItem, LibraryService, ListQuery};

/// Items read per database query.
const PAGE: u32 = 500;

/// Exports the library: `{format: "json" | "csv"}`. The result is the document
/// (`application/json`: the items as the API writes them; `text/csv`: one row per item).
pub struct LibraryExport {
    library: Arc<dyn LibraryService>,
}

impl LibraryExport {
    /// The export over the library.
    pub fn new(library: Arc<dyn LibraryService>) -> Self {
        Self { library }
    }
}

/// As the API writes times (RFC 3339, UTC, milliseconds, `Z`).
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn as_json(item: &LibraryItem) -> Value {
    let mut v = json!({
        "id": item.id,
        "type": item.kind.as_str(),
        "title": item.title,
        "tags": item.tags,
        "createdAt": timestamp(item.created_at),
        "updatedAt": timestamp(item.updated_at),
    });
    if let Some(map) = v.as_object_mut() {
        if let Some(artist) = &item.artist {
            map.insert("artist".into(), json!(artist));
        }
        if let Some(album) = &item.album {
            map.insert("album".into(), json!(album));
        }
        if let Some(d) = item.duration_seconds {
            map.insert("durationSeconds".into(), json!(d));
        }
    }
    v
}

/// A cell safe to open in a spreadsheet: text that would start a formula gets a leading `'`.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

#[async_trait]
impl JobHandler for LibraryExport {
    fn kind(&self) -> &'static str {
        "library.export"
    }

    fn doc(&self) -> app_jobs::JobDoc {
        crate::api::export_doc()
    }

    fn validate(&self, params: &Value) -> Result<(), Vec<FieldError>> {
        match params.get("format").and_then(Value::as_str) {
            Some("json" | "csv") => Ok(()),
            _ => Err(vec![FieldError::new("format", "must be `json` or `csv`")]),
        }
    }

    async fn run(&self, ctx: &JobContext, params: Value) -> Result<Option<JobOutput>, JobError> {
        let csv = params.get("format").and_then(Value::as_str) == Some("csv");
        let failed = |err: crate::LibraryError| {
            tracing::warn!(job = %ctx.id, error = %err, "an export could not read the library");
            JobError::Failed("the library could not be read; the export is retried".into())
        };
        let count = ListQuery::parse(
            None,
            None,
            Pagination::new(Some(1), Some(1)).map_err(|_| JobError::Permanent("bad page".into()))?,
        )
        .map_err(|_| JobError::Permanent("bad query".into()))?;
        let total = self.library.list(ctx.owner, &count).await.map_err(failed)?.total.max(1);
        let mut items = Vec::new();
        let mut after = None;
        loop {
            if ctx.should_stop() {
                return Err(ctx.stopped());
            }
            let page = self.library.scan(ctx.owner, after, PAGE).await.map_err(failed)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let full = page.len() == PAGE as usize;
            items.extend(page);
            ctx.progress(((items.len() as u64 * 100 / total).min(99)) as u8).await;
            if !full {
                break;
            }
        }
        if !csv {
            let doc: Vec<Value> = items.iter().map(as_json).collect();
            return Ok(Some(JobOutput::json(&Value::Array(doc))));
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        let header = ["id", "type", "title", "artist", "album", "durationSeconds", "tags", "createdAt", "updatedAt"];
        let write = |w: &mut csv::Writer<Vec<u8>>, row: &[String]| {
            w.write_record(row).map_err(|e| JobError::Failed(e.to_string()))
        };
        write(&mut out, &header.map(str::to_owned))?;
        for item in &items {
            let row = [
                item.id.to_string(),
                item.kind.as_str().to_owned(),
                cell(&item.title),
                cell(item.artist.as_deref().unwrap_or_default()),
                cell(item.album.as_deref().unwrap_or_default()),
                item.duration_seconds.map(|d| d.to_string()).unwrap_or_default(),
                cell(&item.tags.join(";")),
                timestamp(item.created_at),
                timestamp(item.updated_at),
            ];
            write(&mut out, &row)?;
        }
        let body = out.into_inner().map_err(|e| JobError::Failed(e.to_string()))?;
        Ok(Some(JobOutput { content_type: "text/csv; charset=utf-8".into(), body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_defused() {
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("@SUM"), "'@SUM");
        assert_eq!(cell("Blue Train"), "Blue Train");
    }
}
