//! `library.export`: the submitter's whole library as one JSON or CSV document, written page by
//! page as it is read (memory holds one page and one result chunk, whatever the library's size).

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

/// A cell safe to open in a spreadsheet (OWASP's CSV injection advice): text that would start a
/// formula (`=`, `+`, `-`, `@`, their full-width forms, a tab or a carriage return) gets a
/// leading `'`. Every field is quoted too, so a spreadsheet that splits on `;` sees no cell
/// start inside one.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}') => {
            format!("'{text}")
        }
        _ => text.to_owned(),
    }
}

/// The CSV columns.
const HEADER: [&str; 9] =
    ["id", "type", "title", "artist", "album", "durationSeconds", "tags", "createdAt", "updatedAt"];

/// One item as a CSV record: every cell defused, each tag on its own (tags are joined with `;`).
fn csv_record(item: &LibraryItem) -> [String; 9] {
    let tags: Vec<String> = item.tags.iter().map(|t| cell(t)).collect();
    [
        item.id.to_string(),
        item.kind.as_str().to_owned(),
        item.title.clone(),
        item.artist.clone().unwrap_or_default(),
        item.album.clone().unwrap_or_default(),
        item.duration_seconds.map(|d| d.to_string()).unwrap_or_default(),
        tags.join(";"),
        timestamp(item.created_at),
        timestamp(item.updated_at),
    ]
    .map(|c| cell(&c))
}

/// Rows as CSV text, every field quoted.
fn csv_rows<'a>(rows: impl Iterator<Item = [String; 9]> + 'a) -> Result<Vec<u8>, JobError> {
    let mut out = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_writer(Vec::new());
    for row in rows {
        out.write_record(&row).map_err(|e| JobError::Failed(e.to_string()))?;
    }
    out.into_inner().map_err(|e| JobError::Failed(e.to_string()))
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
        let mut out = ctx.result(if csv { "text/csv; charset=utf-8" } else { "application/json" });
        if csv {
            out.write(&csv_rows(std::iter::once(HEADER.map(str::to_owned)))?).await?;
        } else {
            out.write(b"[").await?;
        }
        let (mut after, mut written) = (None, 0u64);
        loop {
            if ctx.should_stop() {
                return Err(ctx.stopped());
            }
            let page = self.library.scan(ctx.owner, after, PAGE).await.map_err(failed)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let bytes = if csv {
                csv_rows(page.iter().map(csv_record))?
            } else {
                let mut bytes = Vec::new();
                for (i, item) in page.iter().enumerate() {
                    if written > 0 || i > 0 {
                        bytes.push(b',');
                    }
                    serde_json::to_writer(&mut bytes, &as_json(item)).map_err(|e| JobError::Failed(e.to_string()))?;
                }
                bytes
            };
            out.write(&bytes).await?;
            written += page.len() as u64;
            ctx.progress(((written * 100 / total).min(99)) as u8).await;
            if page.len() < PAGE as usize {
                break;
            }
        }
        if !csv {
            out.write(b"]").await?;
        }
        Ok(Some(out.finish().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_defused() {
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("@SUM"), "'@SUM");
        assert_eq!(cell("\u{FF1D}1+1"), "'\u{FF1D}1+1");
        assert_eq!(cell("Blue Train"), "Blue Train");
    }

    #[test]
    fn every_cell_and_every_tag_is_defused_and_every_field_quoted() {
        let at = chrono::DateTime::from_timestamp_millis(1_764_000_000_000).expect("time");
        let item = LibraryItem {
            id: uuid::Uuid::nil(),
            owner_id: uuid::Uuid::nil(),
            kind: crate::ItemType::Song,
            title: "+title".into(),
            artist: Some("-artist".into()),
            album: Some("@album".into()),
            duration_seconds: Some(3),
            tags: vec!["fine".into(), "=HYPERLINK(1)".into(), "\tx".into()],
            created_at: at,
            updated_at: at,
        };
        let row = csv_record(&item);
        assert_eq!(row[2..5], ["'+title", "'-artist", "'@album"]);
        assert_eq!(row[6], "fine;'=HYPERLINK(1);'\tx", "each tag on its own");
        let text = String::from_utf8(csv_rows(std::iter::once(row)).expect("csv")).expect("utf-8");
        assert!(text.starts_with("\"00000000-0000-0000-0000-000000000000\",\"song\",\"'+title\""), "{text}");
        let fields = text.trim_end().split("\",\"").count();
        assert_eq!(fields, 9, "every field quoted: {text}");
    }
}
