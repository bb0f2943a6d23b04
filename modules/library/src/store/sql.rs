//! The SQL adapter: one code path for SQLite and PostgreSQL through sqlx's Any driver.

use std::sync::Arc;

use app_database::{DbError, SqlDatabase};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shaku::Component;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{LibraryRepository, Written};
use crate::{ItemChanges, ItemType, LibraryError, LibraryItem, ListQuery, NewItem, Page, model::normalize_search};

const COLUMNS: &str =
    "id, owner_id, kind, title, artist, album, duration_seconds, tags, fence, version, created_at, updated_at";

/// How often an update re-reads and retries when another write slipped in between (the same
/// lock holder racing itself); beyond that it reports a conflict.
const UPDATE_ATTEMPTS: usize = 5;

/// Library items in the SQL database, at most `max_items` per owner.
#[derive(Component)]
#[shaku(interface = LibraryRepository)]
pub struct SqlLibraryRepository {
    #[shaku(inject)]
    db: Arc<dyn SqlDatabase>,
    /// `library.max_items_per_user`.
    #[shaku(default = 10_000)]
    max_items: u64,
}

impl SqlLibraryRepository {
    /// A repository over `db` holding at most `max_items` per owner (outside the container, e.g.
    /// tests).
    pub fn new(db: Arc<dyn SqlDatabase>, max_items: u64) -> Self {
        Self { db, max_items }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.db.database().pool()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    owner_id: String,
    kind: String,
    title: String,
    artist: Option<String>,
    album: Option<String>,
    duration_seconds: Option<i64>,
    tags: String,
    fence: i64,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

impl Row {
    fn into_item(self) -> Result<LibraryItem, LibraryError> {
        let corrupt =
            |what: &str| LibraryError::Db(DbError::Query(format!("library_items row {}: bad {what}", self.id)));
        Ok(LibraryItem {
            id: Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))?,
            owner_id: Uuid::parse_str(&self.owner_id).map_err(|_| corrupt("owner_id"))?,
            kind: ItemType::parse(&self.kind).ok_or_else(|| corrupt("kind"))?,
            title: self.title.clone(),
            artist: self.artist.clone(),
            album: self.album.clone(),
            duration_seconds: match self.duration_seconds {
                Some(d) => Some(u32::try_from(d).map_err(|_| corrupt("duration_seconds"))?),
                None => None,
            },
            tags: serde_json::from_str(&self.tags).map_err(|_| corrupt("tags"))?,
            created_at: millis(self.created_at).ok_or_else(|| corrupt("created_at"))?,
            updated_at: millis(self.updated_at).ok_or_else(|| corrupt("updated_at"))?,
        })
    }
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn now() -> DateTime<Utc> {
    // Millisecond precision, as stored, so what a write returns equals what a read finds.
    millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

fn search_text(title: &str, artist: Option<&str>) -> String {
    normalize_search(&format!("{title}\n{}", artist.unwrap_or_default()))
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

fn fence(fencing: u64) -> i64 {
    i64::try_from(fencing).unwrap_or(i64::MAX)
}

/// `%<q>%` for LIKE, with LIKE's own characters escaped (`ESCAPE '\'`).
fn contains_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl SqlLibraryRepository {
    async fn fetch_row(&self, owner: Uuid, id: Uuid) -> Result<Option<Row>, LibraryError> {
        let sql = AssertSqlSafe(format!("SELECT {COLUMNS} FROM library_items WHERE id = $1 AND owner_id = $2"));
        Ok(sqlx::query_as(sql).bind(id.to_string()).bind(owner.to_string()).fetch_optional(self.pool()).await?)
    }

    /// Counts `added` new items (already inserted in `tx`) against the owner's quota: on
    /// `QuotaExceeded` the caller's transaction is dropped, so nothing is written. The guarded
    /// UPDATE is the serialization point: a concurrent writer for the same owner waits for this
    /// transaction and then sees its count.
    async fn charge(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        owner: Uuid,
        added: u64,
    ) -> Result<(), LibraryError> {
        if added == 0 {
            return Ok(());
        }
        let owner = owner.to_string();
        let (added, max) =
            (i64::try_from(added).unwrap_or(i64::MAX), i64::try_from(self.max_items).unwrap_or(i64::MAX));
        let exceeded = LibraryError::QuotaExceeded { limit: self.max_items };
        for _ in 0..2 {
            let done =
                sqlx::query("UPDATE library_usage SET items = items + $1 WHERE owner_id = $2 AND items + $1 <= $3")
                    .bind(added)
                    .bind(owner.clone())
                    .bind(max)
                    .execute(&mut **tx)
                    .await?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            let known: Option<i64> = sqlx::query_scalar("SELECT items FROM library_usage WHERE owner_id = $1")
                .bind(owner.clone())
                .fetch_optional(&mut **tx)
                .await?;
            if known.is_some() {
                return Err(exceeded);
            }
            // The owner's first write since the table came: count what it holds (this
            // transaction's items included), then charge nothing more.
            let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM library_items WHERE owner_id = $1")
                .bind(owner.clone())
                .fetch_one(&mut **tx)
                .await?;
            if held > max {
                return Err(exceeded);
            }
            let made = sqlx::query(
                "INSERT INTO library_usage (owner_id, items) VALUES ($1, $2) ON CONFLICT (owner_id) DO NOTHING",
            )
            .bind(owner.clone())
            .bind(held)
            .execute(&mut **tx)
            .await?;
            if made.rows_affected() == 1 {
                return Ok(());
            }
            // Another writer made the row meanwhile (and counted without these items): charge them.
        }
        Err(exceeded)
    }

    fn insert_sql() -> &'static str {
        "INSERT INTO library_items \
         (id, owner_id, kind, title, artist, album, duration_seconds, tags, search, fence, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10, $11)"
    }

    fn built(owner: Uuid, item: NewItem, at: DateTime<Utc>) -> LibraryItem {
        Self::built_with_id(Uuid::now_v7(), owner, item, at)
    }

    fn built_with_id(id: Uuid, owner: Uuid, item: NewItem, at: DateTime<Utc>) -> LibraryItem {
        LibraryItem {
            id,
            owner_id: owner,
            kind: item.kind,
            title: item.title,
            artist: item.artist,
            album: item.album,
            duration_seconds: item.duration_seconds,
            tags: item.tags,
            created_at: at,
            updated_at: at,
        }
    }
}

macro_rules! bind_insert {
    ($item:expr) => {
        sqlx::query(SqlLibraryRepository::insert_sql())
            .bind($item.id.to_string())
            .bind($item.owner_id.to_string())
            .bind($item.kind.as_str())
            .bind($item.title.clone())
            .bind($item.artist.clone())
            .bind($item.album.clone())
            .bind($item.duration_seconds.map(i64::from))
            .bind(tags_json(&$item.tags))
            .bind(search_text(&$item.title, $item.artist.as_deref()))
            .bind($item.created_at.timestamp_millis())
            .bind($item.updated_at.timestamp_millis())
    };
}

#[async_trait]
impl LibraryRepository for SqlLibraryRepository {
    async fn create(&self, owner: Uuid, item: NewItem) -> Result<LibraryItem, LibraryError> {
        let item = Self::built(owner, item, now());
        let mut tx = self.pool().begin().await?;
        bind_insert!(item).execute(&mut *tx).await?;
        self.charge(&mut tx, owner, 1).await?;
        tx.commit().await?;
        Ok(item)
    }

    async fn create_many(&self, owner: Uuid, items: Vec<NewItem>) -> Result<Vec<LibraryItem>, LibraryError> {
        let at = now();
        let items: Vec<LibraryItem> = items.into_iter().map(|i| Self::built(owner, i, at)).collect();
        let mut tx = self.pool().begin().await?;
        for item in &items {
            bind_insert!(item).execute(&mut *tx).await?;
        }
        self.charge(&mut tx, owner, items.len() as u64).await?;
        tx.commit().await?;
        Ok(items)
    }

    async fn insert_missing(&self, owner: Uuid, items: Vec<(Uuid, NewItem)>) -> Result<u64, LibraryError> {
        let at = now();
        let mut tx = self.pool().begin().await?;
        let mut inserted = 0;
        for (id, item) in items {
            let item = Self::built_with_id(id, owner, item, at);
            let sql = AssertSqlSafe(format!("{} ON CONFLICT (id) DO NOTHING", Self::insert_sql()));
            let done = sqlx::query(sql)
                .bind(item.id.to_string())
                .bind(item.owner_id.to_string())
                .bind(item.kind.as_str())
                .bind(item.title.clone())
                .bind(item.artist.clone())
                .bind(item.album.clone())
                .bind(item.duration_seconds.map(i64::from))
                .bind(tags_json(&item.tags))
                .bind(search_text(&item.title, item.artist.as_deref()))
                .bind(item.created_at.timestamp_millis())
                .bind(item.updated_at.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            inserted += done.rows_affected();
        }
        self.charge(&mut tx, owner, inserted).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn find(&self, owner: Uuid, id: Uuid) -> Result<Option<LibraryItem>, LibraryError> {
        self.fetch_row(owner, id).await?.map(Row::into_item).transpose()
    }

    async fn list(&self, owner: Uuid, query: &ListQuery) -> Result<Page<LibraryItem>, LibraryError> {
        // Only the clauses in use are part of the text, so every placeholder has a typed value.
        let mut filter = String::from("owner_id = $1");
        let mut n = 1;
        if query.kind.is_some() {
            n += 1;
            filter.push_str(&format!(" AND kind = ${n}"));
        }
        if query.q.is_some() {
            n += 1;
            filter.push_str(&format!(" AND search LIKE ${n} ESCAPE '\\'"));
        }
        let pattern = query.q.as_deref().map(contains_pattern);
        let count_sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM library_items WHERE {filter}"));
        let page_sql = AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM library_items WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ));
        let mut count = sqlx::query_scalar::<_, i64>(count_sql).bind(owner.to_string());
        let mut page = sqlx::query_as::<_, Row>(page_sql).bind(owner.to_string());
        if let Some(kind) = query.kind {
            count = count.bind(kind.as_str());
            page = page.bind(kind.as_str());
        }
        if let Some(pattern) = &pattern {
            count = count.bind(pattern.clone());
            page = page.bind(pattern.clone());
        }
        let limit = i64::try_from(query.page.limit()).unwrap_or(i64::MAX);
        let offset = i64::try_from(query.page.offset()).unwrap_or(i64::MAX);
        let total = count.fetch_one(self.pool()).await?;
        let rows = page.bind(limit).bind(offset).fetch_all(self.pool()).await?;
        Ok(Page {
            items: rows.into_iter().map(Row::into_item).collect::<Result<_, _>>()?,
            total: u64::try_from(total).unwrap_or(0),
            page: query.page.page,
            page_size: query.page.page_size,
        })
    }

    async fn update(
        &self,
        owner: Uuid,
        id: Uuid,
        changes: &ItemChanges,
        fencing: u64,
    ) -> Result<Written<LibraryItem>, LibraryError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(row) = self.fetch_row(owner, id).await? else { return Ok(Written::NotFound) };
            if row.fence > fence(fencing) {
                return Ok(Written::Stale);
            }
            let version = row.version;
            let mut next = changes.apply(&row.into_item()?);
            next.updated_at = now().max(next.updated_at);
            let done = sqlx::query(
                "UPDATE library_items SET kind = $1, title = $2, artist = $3, album = $4, duration_seconds = $5, \
                 tags = $6, search = $7, fence = $8, version = version + 1, updated_at = $9 \
                 WHERE id = $10 AND owner_id = $11 AND version = $12 AND fence <= $8",
            )
            .bind(next.kind.as_str())
            .bind(next.title.clone())
            .bind(next.artist.clone())
            .bind(next.album.clone())
            .bind(next.duration_seconds.map(i64::from))
            .bind(tags_json(&next.tags))
            .bind(search_text(&next.title, next.artist.as_deref()))
            .bind(fence(fencing))
            .bind(next.updated_at.timestamp_millis())
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(version)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                return Ok(Written::Done(next));
            }
        }
        Ok(Written::Stale)
    }

    async fn delete(&self, owner: Uuid, id: Uuid, fencing: u64) -> Result<Written<()>, LibraryError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM library_items WHERE id = $1 AND owner_id = $2 AND fence <= $3")
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(fence(fencing))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            sqlx::query("UPDATE library_usage SET items = items - 1 WHERE owner_id = $1 AND items > 0")
                .bind(owner.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Written::Done(()));
        }
        drop(tx);
        Ok(if self.fetch_row(owner, id).await?.is_some() { Written::Stale } else { Written::NotFound })
    }

    async fn scan(&self, owner: Uuid, after: Option<Uuid>, limit: u32) -> Result<Vec<LibraryItem>, LibraryError> {
        let rows: Vec<Row> = match after {
            None => {
                let sql = AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM library_items WHERE owner_id = $1 ORDER BY id LIMIT $2"
                ));
                sqlx::query_as(sql).bind(owner.to_string()).bind(i64::from(limit)).fetch_all(self.pool()).await?
            }
            Some(after) => {
                let sql = AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM library_items WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ));
                sqlx::query_as(sql)
                    .bind(owner.to_string())
                    .bind(after.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.into_iter().map(Row::into_item).collect()
    }
}
