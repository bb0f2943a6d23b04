//! The library controller: `/api/v1/library/*`.

use std::{sync::Arc, time::Duration};

use app_core::{
    BearerAuth, FieldError, Nullable, Problems, Timestamp,
    pagination::Pagination,
    problem::markers::{BadRequest, Conflict, NotFound, QuotaExceeded, Unauthorized, Unavailable},
};
use app_locks::{LockNotHeld, Locked};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi, Tags,
    param::{Header, Path, Query},
    payload::Json,
};
use serde::{Deserialize, Serialize};
use shaku::HasComponent;
use uuid::Uuid;

use crate::{
    ItemChanges, ItemType, LibraryError, LibraryItem, LibraryService, ListQuery, NewItem,
    model::{RawChanges, RawItem},
};

#[derive(Tags)]
enum LibraryTags {
    /// The caller's library: songs, albums, playlists, podcasts. Reads are cached; every write is
    /// visible to the next read on any instance.
    Library,
}

/// What kind of item it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize, Serialize)]
#[oai(rename = "ItemType", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ItemTypeDto {
    /// A song.
    Song,
    /// An album.
    Album,
    /// A playlist.
    Playlist,
    /// A podcast (or an episode).
    Podcast,
}

impl From<ItemType> for ItemTypeDto {
    fn from(kind: ItemType) -> Self {
        match kind {
            ItemType::Song => ItemTypeDto::Song,
            ItemType::Album => ItemTypeDto::Album,
            ItemType::Playlist => ItemTypeDto::Playlist,
            ItemType::Podcast => ItemTypeDto::Podcast,
        }
    }
}

impl From<ItemTypeDto> for ItemType {
    fn from(kind: ItemTypeDto) -> Self {
        match kind {
            ItemTypeDto::Song => ItemType::Song,
            ItemTypeDto::Album => ItemType::Album,
            ItemTypeDto::Playlist => ItemType::Playlist,
            ItemTypeDto::Podcast => ItemType::Podcast,
        }
    }
}

/// An item of the caller's library.
#[derive(Debug, Clone, Object)]
#[oai(rename = "LibraryItem", rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct LibraryItemDto {
    /// The item's id (UUID v7).
    pub id: Uuid,
    /// What kind of item it is.
    #[oai(rename = "type")]
    pub kind: ItemTypeDto,
    /// The title.
    pub title: String,
    /// The artist, when known.
    pub artist: Option<String>,
    /// The album, when known.
    pub album: Option<String>,
    /// The length in seconds, when known.
    pub duration_seconds: Option<u32>,
    /// Tags, in the order given.
    pub tags: Vec<String>,
    /// When it was added (RFC 3339, UTC).
    pub created_at: Timestamp,
    /// When it last changed (RFC 3339, UTC).
    pub updated_at: Timestamp,
}

impl From<LibraryItem> for LibraryItemDto {
    fn from(i: LibraryItem) -> Self {
        LibraryItemDto {
            id: i.id,
            kind: i.kind.into(),
            title: i.title,
            artist: i.artist,
            album: i.album,
            duration_seconds: i.duration_seconds,
            tags: i.tags,
            created_at: i.created_at.into(),
            updated_at: i.updated_at.into(),
        }
    }
}

/// A new library item. Fields not listed here (`id`, `ownerId`, timestamps) are ignored: the
/// server sets them.
#[derive(Debug, Clone, Object, Deserialize, Serialize)]
#[oai(rename = "LibraryItemInput", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct LibraryItemInput {
    /// What kind of item it is: `song`, `album`, `playlist` or `podcast`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: ItemTypeDto,
    /// 1 to 200 characters (surrounding spaces are trimmed).
    #[oai(validator(min_length = 1, max_length = 200))]
    pub title: String,
    /// 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub artist: Option<String>,
    /// 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub album: Option<String>,
    /// 1 to 604800 (one week).
    #[oai(validator(minimum(value = "1"), maximum(value = "604800")))]
    pub duration_seconds: Option<u32>,
    /// At most 20 tags of 1 to 40 characters; duplicates (ignoring case) are dropped.
    #[oai(validator(max_items = 20, min_length = 1, max_length = 40))]
    pub tags: Option<Vec<String>>,
}

impl LibraryItemInput {
    /// Validates the input into a new item, naming each invalid field.
    pub fn to_new_item(&self) -> Result<NewItem, Vec<FieldError>> {
        NewItem::parse(RawItem {
            kind: self.kind.into(),
            title: &self.title,
            artist: self.artist.as_deref(),
            album: self.album.as_deref(),
            duration_seconds: self.duration_seconds,
            tags: self.tags.as_deref(),
        })
    }
}

/// Changes to an item: absent fields stay as they are; `null` clears `artist`, `album`,
/// `durationSeconds` and `tags`. The same rules as for a new item apply.
#[derive(Debug, Object)]
#[oai(rename = "LibraryItemPatch", rename_all = "camelCase")]
struct LibraryItemPatch {
    /// A new kind.
    #[oai(rename = "type")]
    kind: Option<ItemTypeDto>,
    /// A new title: 1 to 200 characters (surrounding spaces are trimmed).
    #[oai(validator(min_length = 1, max_length = 200))]
    title: Option<String>,
    /// A new artist (1 to 200 characters), or `null` to clear it.
    #[oai(validator(min_length = 1, max_length = 200))]
    artist: Nullable<String>,
    /// A new album (1 to 200 characters), or `null` to clear it.
    #[oai(validator(min_length = 1, max_length = 200))]
    album: Nullable<String>,
    /// A new length (1 to 604800), or `null` to clear it.
    #[oai(validator(minimum(value = "1"), maximum(value = "604800")))]
    duration_seconds: Nullable<u32>,
    /// New tags (replacing the old: at most 20 of 1 to 40 characters), or `null` for none.
    #[oai(validator(max_items = 20, min_length = 1, max_length = 40))]
    tags: Nullable<Vec<String>>,
}

impl LibraryItemPatch {
    fn to_changes(&self) -> Result<ItemChanges, Vec<FieldError>> {
        ItemChanges::parse(RawChanges {
            kind: self.kind.map(Into::into),
            title: self.title.as_deref().map(Some),
            artist: self.artist.as_opt_ref().map(|v| v.map(String::as_str)),
            album: self.album.as_opt_ref().map(|v| v.map(String::as_str)),
            duration_seconds: self.duration_seconds.as_opt_ref().map(|v| v.copied()),
            tags: self.tags.as_opt_ref().map(|v| v.map(Vec::as_slice)),
        })
    }
}

/// One page of the caller's library, newest first.
#[derive(Debug, Object)]
#[oai(rename = "LibraryItemPage", rename_all = "camelCase")]
struct LibraryItemPage {
    /// The items on this page.
    items: Vec<LibraryItemDto>,
    /// Matching items across all pages.
    total: u64,
    /// This page's number (1-based).
    page: u64,
    /// The page size asked for.
    page_size: u64,
}

/// An edit lock granted to the caller.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct LockGrant {
    /// Send it as `X-Lock-Token` with PATCH, DELETE, extend and release. Keep it secret: it is
    /// the proof of holding the lock.
    lock_token: String,
    /// Grows with every acquisition of this item's lock; the server checks it on every write, so
    /// a holder whose lock expired cannot overwrite a newer holder's changes. Informational.
    fencing_token: u64,
    /// Seconds until the lock expires unless extended.
    expires_in: u64,
}

impl std::fmt::Debug for LockGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGrant")
            .field("lock_token", &"[redacted]")
            .field("fencing_token", &self.fencing_token)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// An item's lock.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct LockState {
    /// Whether anyone holds the lock.
    locked: bool,
    /// Seconds until it expires (0 when not locked).
    expires_in: u64,
    /// Whether the holder is the caller (perhaps in another tab: writes still need its token).
    held_by_me: bool,
}

/// A renewed lock.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct LockExtended {
    /// Seconds until the lock expires unless extended again.
    expires_in: u64,
}

#[derive(ApiResponse)]
enum Created {
    /// Created; `Location` is the item's URL.
    #[oai(status = 201)]
    Created(Json<LibraryItemDto>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
enum LockCreated {
    /// Locked for the caller.
    #[oai(status = 201)]
    Created(Json<LockGrant>),
}

fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

fn invalid(errors: Vec<FieldError>) -> LibraryError {
    LibraryError::Invalid(errors)
}

/// `/api/v1/library/*`.
pub struct LibraryApi {
    service: Arc<dyn LibraryService>,
}

impl LibraryApi {
    /// The controller, with its service resolved from the module.
    pub fn new<M: HasComponent<dyn LibraryService> + ?Sized>(module: &M) -> Self {
        Self { service: module.resolve() }
    }
}

#[OpenApi(prefix_path = "/api/v1/library", tag = "LibraryTags::Library")]
impl LibraryApi {
    /// List the caller's library
    ///
    /// Newest first. `type` keeps one kind; `q` keeps items whose title or artist contains it
    /// (case-insensitive, spaces collapsed; at most 100 characters); `page` >= 1 (at most
    /// 1000000) and `pageSize` 1-100 (default 20). Out-of-range values are a 400.
    #[oai(path = "/", method = "get", operation_id = "listLibrary")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(name = "type")] kind: Query<Option<ItemTypeDto>>,
        #[oai(validator(max_length = 100))] q: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<Option<u64>>,
        #[oai(name = "pageSize", validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<
            Option<u64>,
        >,
    ) -> Result<Json<LibraryItemPage>, Problems<(BadRequest, Unauthorized, Unavailable)>> {
        let pagination = Pagination::new(page.0, page_size.0)?;
        let query = ListQuery::parse(kind.0.map(Into::into), q.0.as_deref(), pagination).map_err(invalid)?;
        let page = self.service.list(auth.0.user_id, &query).await?;
        Ok(Json(LibraryItemPage {
            items: page.items.into_iter().map(Into::into).collect(),
            total: page.total,
            page: page.page,
            page_size: page.page_size,
        }))
    }

    /// Add an item to the caller's library
    ///
    /// A library holds at most `library.max_items_per_user` items (10,000 by default); an item
    /// beyond is refused with 409 `QUOTA_EXCEEDED`.
    #[oai(path = "/", method = "post", operation_id = "createLibraryItem")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<LibraryItemInput>,
    ) -> Result<Created, Problems<(BadRequest, Unauthorized, QuotaExceeded, Unavailable)>> {
        let item = body.0.to_new_item().map_err(invalid)?;
        let item = self.service.create(auth.0.user_id, item).await?;
        let location = format!("/api/v1/library/{}", item.id);
        Ok(Created::Created(Json(item.into()), location))
    }

    /// One item of the caller's library
    ///
    /// Another user's item is a 404, like one that does not exist.
    #[oai(path = "/:id", method = "get", operation_id = "getLibraryItem")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Json<LibraryItemDto>, Problems<(BadRequest, Unauthorized, NotFound, Unavailable)>> {
        Ok(Json(self.service.get(auth.0.user_id, id.0).await?.into()))
    }

    /// Change an item
    ///
    /// With `X-Lock-Token` (from `POST /library/{id}/lock`), the change is made under that lock:
    /// 423 `LOCKED` when someone else holds the lock now, 409 `LOCK_NOT_HELD` when nobody does
    /// (it expired). Without it, the server takes a short lock itself: 423 `LOCKED` while anyone
    /// (another tab included) holds the item's lock. 409 `CONFLICT` means the item was changed
    /// under a newer lock after yours expired: nothing was changed.
    #[oai(path = "/:id", method = "patch", operation_id = "updateLibraryItem")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(name = "X-Lock-Token")] lock_token: Header<Option<String>>,
        body: Json<LibraryItemPatch>,
    ) -> Result<
        Json<LibraryItemDto>,
        Problems<(BadRequest, Unauthorized, NotFound, Conflict, LockNotHeld, Locked, Unavailable)>,
    > {
        let changes = body.0.to_changes().map_err(invalid)?;
        let item = self.service.update(auth.0.user_id, id.0, changes, lock_token.0.as_deref()).await?;
        Ok(Json(item.into()))
    }

    /// Delete an item
    ///
    /// Locking as for PATCH.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteLibraryItem")]
    async fn delete(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(name = "X-Lock-Token")] lock_token: Header<Option<String>>,
    ) -> Result<Done, Problems<(BadRequest, Unauthorized, NotFound, Conflict, LockNotHeld, Locked, Unavailable)>> {
        self.service.delete(auth.0.user_id, id.0, lock_token.0.as_deref()).await?;
        Ok(Done::NoContent)
    }

    /// Lock an item for editing
    ///
    /// 423 `LOCKED` (with `Retry-After`) while someone else holds it. The lock expires by itself
    /// after `expiresIn` seconds unless extended; release it when done.
    #[oai(path = "/:id/lock", method = "post", operation_id = "lockLibraryItem")]
    async fn lock(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<LockCreated, Problems<(BadRequest, Unauthorized, NotFound, Locked, Unavailable)>> {
        let lease = self.service.lock(auth.0.user_id, id.0).await?;
        Ok(LockCreated::Created(Json(LockGrant {
            lock_token: lease.token,
            fencing_token: lease.fencing,
            expires_in: secs(lease.ttl),
        })))
    }

    /// An item's lock
    #[oai(path = "/:id/lock", method = "get", operation_id = "getLibraryItemLock")]
    async fn lock_status(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Json<LockState>, Problems<(BadRequest, Unauthorized, NotFound, Unavailable)>> {
        let view = self.service.lock_status(auth.0.user_id, id.0).await?;
        Ok(Json(LockState { locked: view.locked, expires_in: secs(view.expires_in), held_by_me: view.held_by_me }))
    }

    /// Extend the caller's lock
    ///
    /// 409 `LOCK_NOT_HELD` when `X-Lock-Token` does not hold the lock (any more).
    #[oai(path = "/:id/lock/extend", method = "post", operation_id = "extendLibraryItemLock")]
    async fn extend(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(name = "X-Lock-Token")] lock_token: Header<String>,
    ) -> Result<Json<LockExtended>, Problems<(BadRequest, Unauthorized, NotFound, LockNotHeld, Unavailable)>> {
        let ttl = self.service.extend_lock(auth.0.user_id, id.0, &lock_token.0).await?;
        Ok(Json(LockExtended { expires_in: secs(ttl) }))
    }

    /// Release the caller's lock
    ///
    /// 409 `LOCK_NOT_HELD` when `X-Lock-Token` does not hold the lock (any more).
    #[oai(path = "/:id/lock", method = "delete", operation_id = "unlockLibraryItem")]
    async fn unlock(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(name = "X-Lock-Token")] lock_token: Header<String>,
    ) -> Result<Done, Problems<(BadRequest, Unauthorized, NotFound, LockNotHeld, Unavailable)>> {
        self.service.unlock(auth.0.user_id, id.0, &lock_token.0).await?;
        Ok(Done::NoContent)
    }
}

/// `library.import`'s params.
#[derive(Debug, Object)]
#[oai(rename = "LibraryImportParams", rename_all = "camelCase")]
struct LibraryImportParams {
    /// The items to add: 1 to 10000 (each one as `POST /library` takes it).
    #[oai(validator(min_items = 1, max_items = 10000))]
    items: Vec<LibraryItemInput>,
}

/// An item an import could not add.
#[derive(Debug, Object)]
#[oai(rename = "ImportFailure", rename_all = "camelCase")]
struct ImportFailure {
    /// Its position in `items` (0-based).
    index: u64,
    /// Why, as a problem code: `MALFORMED_REQUEST`, `VALIDATION_FAILED`, or `QUOTA_EXCEEDED`
    /// (the library was full: `library.max_items_per_user`).
    code: String,
    /// Why, for a human.
    message: String,
}

/// `library.import`'s result document.
#[derive(Debug, Object)]
#[oai(rename = "LibraryImportReport", rename_all = "camelCase")]
struct LibraryImportReport {
    /// Items added.
    imported: u64,
    /// Items not added, and why.
    failed: Vec<ImportFailure>,
}

/// The format of an export.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "ExportFormat", rename_all = "lowercase")]
enum ExportFormat {
    /// `application/json`: the items as the API writes them.
    Json,
    /// `text/csv`: one row per item, every cell defused for spreadsheets.
    Csv,
}

/// `library.export`'s params.
#[derive(Debug, Object)]
#[oai(rename = "LibraryExportParams", rename_all = "camelCase")]
struct LibraryExportParams {
    /// `json` or `csv`.
    format: ExportFormat,
}

/// `library.import` in the spec.
pub(crate) fn import_doc() -> app_jobs::JobDoc {
    let (params, mut components) = app_core::openapi::schema_of::<LibraryImportParams>();
    let (report, more) = app_core::openapi::schema_of::<LibraryImportReport>();
    components.extend(more);
    app_jobs::JobDoc {
        description: "Adds items to the caller's library; its result is the import report.",
        params: Some(params),
        results: vec![("application/json", report)],
        components,
    }
}

/// `library.export` in the spec.
pub(crate) fn export_doc() -> app_jobs::JobDoc {
    let (params, mut components) = app_core::openapi::schema_of::<LibraryExportParams>();
    let (items, more) = app_core::openapi::schema_of::<Vec<LibraryItemDto>>();
    components.extend(more);
    app_jobs::JobDoc {
        description: "Writes the caller's whole library as one document: JSON (the items) or CSV.",
        params: Some(params),
        results: vec![("application/json", items), ("text/csv", serde_json::json!({ "type": "string" }))],
        components,
    }
}
