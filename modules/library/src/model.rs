//! Library items and the validated values they are made of.
//!
//! Every rule lives here, once: the routes, and the import job of the jobs module, turn raw
//! input into these types through [`NewItem::parse`] and [`ItemChanges::parse`], which name each
//! invalid field the way the client sent it.

use app_core::{FieldError, pagination::Pagination};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The longest title, artist or album, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The most tags an item may carry.
pub const MAX_TAGS: usize = 20;
/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 40;
/// The longest duration: one week, in seconds.
pub const MAX_DURATION_SECONDS: u32 = 7 * 24 * 3600;
/// The longest search text `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// What kind of item it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    /// A song.
    Song,
    /// An album.
    Album,
    /// A playlist.
    Playlist,
    /// A podcast (or an episode).
    Podcast,
}

impl ItemType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Song => "song",
            ItemType::Album => "album",
            ItemType::Playlist => "playlist",
            ItemType::Podcast => "podcast",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "song" => Some(ItemType::Song),
            "album" => Some(ItemType::Album),
            "playlist" => Some(ItemType::Playlist),
            "podcast" => Some(ItemType::Podcast),
            _ => None,
        }
    }
}

/// A library item, as stored. Serializable for the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryItem {
    /// UUID v7.
    pub id: Uuid,
    /// The owner; nobody else can see or change the item.
    pub owner_id: Uuid,
    /// The kind.
    pub kind: ItemType,
    /// 1 to 200 characters.
    pub title: String,
    /// Up to 200 characters.
    pub artist: Option<String>,
    /// Up to 200 characters.
    pub album: Option<String>,
    /// 1 second to one week.
    pub duration_seconds: Option<u32>,
    /// Up to 20 tags, each 1 to 40 characters, distinct.
    pub tags: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A validated new item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// The kind.
    pub kind: ItemType,
    /// Trimmed, non-empty.
    pub title: String,
    /// Trimmed, non-empty when present.
    pub artist: Option<String>,
    /// Trimmed, non-empty when present.
    pub album: Option<String>,
    /// Within bounds.
    pub duration_seconds: Option<u32>,
    /// Trimmed, distinct.
    pub tags: Vec<String>,
}

/// The raw fields of a new item, as the client sent them.
#[derive(Debug, Clone, Copy)]
pub struct RawItem<'a> {
    /// `type`.
    pub kind: ItemType,
    /// `title`.
    pub title: &'a str,
    /// `artist`.
    pub artist: Option<&'a str>,
    /// `album`.
    pub album: Option<&'a str>,
    /// `durationSeconds`.
    pub duration_seconds: Option<u32>,
    /// `tags`.
    pub tags: Option<&'a [String]>,
}

impl NewItem {
    /// Validates raw input; every invalid field is reported, named as the client sent it.
    pub fn parse(raw: RawItem<'_>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = text("title", Some(raw.title), &mut errors);
        let item = NewItem {
            kind: raw.kind,
            title: title.unwrap_or_default(),
            artist: text("artist", raw.artist, &mut errors),
            album: text("album", raw.album, &mut errors),
            duration_seconds: duration(raw.duration_seconds, &mut errors),
            tags: tags(raw.tags.unwrap_or_default(), &mut errors),
        };
        if errors.is_empty() { Ok(item) } else { Err(errors) }
    }
}

/// A change to one field that may be cleared: `None` leaves it as it is.
pub type Nullable<T> = Option<Option<T>>;

/// Validated changes to an item; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemChanges {
    /// A new kind.
    pub kind: Option<ItemType>,
    /// A new title.
    pub title: Option<String>,
    /// A new artist, or `Some(None)` to clear it.
    pub artist: Nullable<String>,
    /// A new album, or `Some(None)` to clear it.
    pub album: Nullable<String>,
    /// A new duration, or `Some(None)` to clear it.
    pub duration_seconds: Nullable<u32>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
}

/// The raw fields of a change, as the client sent them (`Some(None)`: an explicit `null`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawChanges<'a> {
    /// `type`.
    pub kind: Option<ItemType>,
    /// `title` (`null` is not allowed: a title is required).
    pub title: Nullable<&'a str>,
    /// `artist`.
    pub artist: Nullable<&'a str>,
    /// `album`.
    pub album: Nullable<&'a str>,
    /// `durationSeconds`.
    pub duration_seconds: Nullable<u32>,
    /// `tags` (`null` clears them).
    pub tags: Nullable<&'a [String]>,
}

impl ItemChanges {
    /// Validates a raw change.
    pub fn parse(raw: RawChanges<'_>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = match raw.title {
            None => None,
            Some(None) => {
                errors.push(FieldError::new("title", "must not be null"));
                None
            }
            Some(Some(t)) => text("title", Some(t), &mut errors),
        };
        let changes = ItemChanges {
            kind: raw.kind,
            title,
            artist: raw.artist.map(|v| text("artist", v, &mut errors)),
            album: raw.album.map(|v| text("album", v, &mut errors)),
            duration_seconds: raw.duration_seconds.map(|v| duration(v, &mut errors)),
            tags: raw.tags.map(|v| tags(v.unwrap_or_default(), &mut errors)),
        };
        if errors.is_empty() { Ok(changes) } else { Err(errors) }
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == ItemChanges::default()
    }

    /// The item with the changes applied.
    pub fn apply(&self, item: &LibraryItem) -> LibraryItem {
        let mut next = item.clone();
        if let Some(kind) = self.kind {
            next.kind = kind;
        }
        if let Some(title) = &self.title {
            next.title.clone_from(title);
        }
        if let Some(artist) = &self.artist {
            next.artist.clone_from(artist);
        }
        if let Some(album) = &self.album {
            next.album.clone_from(album);
        }
        if let Some(duration) = self.duration_seconds {
            next.duration_seconds = duration;
        }
        if let Some(tags) = &self.tags {
            next.tags.clone_from(tags);
        }
        next
    }
}

/// Whether text holds control characters (NUL among them, which PostgreSQL refuses to store).
fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

fn text(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = value?.trim();
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        errors.push(FieldError::new(
            field,
            format!("must be 1 to {MAX_TEXT_CHARS} characters (surrounding spaces trimmed)"),
        ));
        return None;
    }
    if has_control(value) {
        errors.push(FieldError::new(field, "must not contain control characters"));
        return None;
    }
    Some(value.to_owned())
}

fn duration(value: Option<u32>, errors: &mut Vec<FieldError>) -> Option<u32> {
    let value = value?;
    if value == 0 || value > MAX_DURATION_SECONDS {
        errors.push(FieldError::new("durationSeconds", format!("must be between 1 and {MAX_DURATION_SECONDS}")));
        return None;
    }
    Some(value)
}

fn tags(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if raw.len() > MAX_TAGS {
        errors.push(FieldError::new("tags", format!("must have at most {MAX_TAGS} entries")));
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, tag) in raw.iter().enumerate() {
        let tag = tag.trim();
        let chars = tag.chars().count();
        if chars == 0 || chars > MAX_TAG_CHARS || has_control(tag) {
            errors.push(FieldError::new(
                format!("tags[{i}]"),
                format!("must be 1 to {MAX_TAG_CHARS} characters, no control characters"),
            ));
        } else if !out.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
            out.push(tag.to_owned());
        }
    }
    out
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only items of this kind.
    pub kind: Option<ItemType>,
    /// Only items whose title or artist contains this (normalized: trimmed, inner whitespace
    /// collapsed, lowercased).
    pub q: Option<String>,
    /// The page.
    pub page: Pagination,
}

impl ListQuery {
    /// Validates the raw query values.
    pub fn parse(kind: Option<ItemType>, q: Option<&str>, page: Pagination) -> Result<Self, Vec<FieldError>> {
        let q = q.map(normalize_search).filter(|q| !q.is_empty());
        if q.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS || has_control(q)) {
            return Err(vec![FieldError::new(
                "q",
                format!("must be at most {MAX_QUERY_CHARS} characters, no control characters"),
            )]);
        }
        Ok(Self { kind, q, page })
    }

    /// The cache entry of this page: equal queries (after normalization) share it.
    pub fn cache_item(&self) -> String {
        let normalized = format!(
            "{}\n{}\n{}\n{}",
            self.kind.map_or("", ItemType::as_str),
            self.q.as_deref().unwrap_or_default(),
            self.page.page,
            self.page.page_size
        );
        let digest = Sha256::digest(normalized.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("page:{hex}")
    }
}

/// Search text as matched: trimmed, whitespace collapsed, lowercased (what the `search` column holds).
pub fn normalize_search(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Items across all pages.
    pub total: u64,
    /// The page number.
    pub page: u64,
    /// The page size.
    pub page_size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(title: &str) -> RawItem<'_> {
        RawItem { kind: ItemType::Song, title, artist: None, album: None, duration_seconds: None, tags: None }
    }

    #[test]
    fn new_items_are_trimmed_and_every_bad_field_is_named() {
        let tags = vec![" Rock ".to_owned(), "rock".to_owned(), "jazz".to_owned()];
        let item =
            NewItem::parse(RawItem { artist: Some("  Ada "), tags: Some(&tags), ..raw(" Song ") }).expect("valid");
        assert_eq!((item.title.as_str(), item.artist.as_deref()), ("Song", Some("Ada")));
        assert_eq!(item.tags, ["Rock", "jazz"], "trimmed and distinct, case-insensitively");

        let long = "x".repeat(201);
        let bad_tags = vec!["ok".to_owned(), " ".to_owned()];
        let errors = NewItem::parse(RawItem {
            artist: Some(&long),
            duration_seconds: Some(0),
            tags: Some(&bad_tags),
            ..raw("   ")
        })
        .expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "artist", "durationSeconds", "tags[1]"]);
        assert!(NewItem::parse(raw(&"é".repeat(200))).is_ok(), "characters, not bytes");
        assert_eq!(NewItem::parse(raw("a\u{0}b")).expect_err("NUL")[0].field, "title");
        let nul_tag = vec!["a\u{0}".to_owned()];
        assert_eq!(NewItem::parse(RawItem { tags: Some(&nul_tag), ..raw("t") }).expect_err("NUL")[0].field, "tags[0]");
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(NewItem::parse(RawItem { tags: Some(&many), ..raw("t") }).expect_err("too many")[0].field, "tags");
    }

    #[test]
    fn changes_distinguish_absent_from_null() {
        let changes =
            ItemChanges::parse(RawChanges { artist: Some(None), album: Some(Some("A")), ..Default::default() })
                .expect("valid");
        assert_eq!(
            (changes.artist.clone(), changes.album.clone(), changes.title.clone()),
            (Some(None), Some(Some("A".into())), None)
        );
        let errors =
            ItemChanges::parse(RawChanges { title: Some(None), ..Default::default() }).expect_err("null title");
        assert_eq!(errors[0].field, "title");
        assert!(ItemChanges::parse(RawChanges::default()).expect("valid").is_empty());
    }

    #[test]
    fn equal_queries_share_a_cache_entry() {
        let page = Pagination::new(Some(1), Some(20)).expect("valid");
        let a = ListQuery::parse(Some(ItemType::Song), Some("  Blue   Moon "), page).expect("valid");
        let b = ListQuery::parse(Some(ItemType::Song), Some("blue moon"), page).expect("valid");
        assert_eq!(a.cache_item(), b.cache_item());
        let c = ListQuery::parse(Some(ItemType::Album), Some("blue moon"), page).expect("valid");
        assert_ne!(a.cache_item(), c.cache_item());
        assert_eq!(ListQuery::parse(None, Some("   "), page).expect("valid").q, None, "blank is no filter");
        assert!(ListQuery::parse(None, Some(&"q".repeat(101)), page).is_err());
        assert!(ListQuery::parse(None, Some("a\u{0}"), page).is_err());
    }
}
