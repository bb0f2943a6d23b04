//! The library module: a user's songs, albums, playlists and podcasts.
//!
//! It owns the item record and its validation ([`NewItem::parse`], [`ItemChanges::parse`], also
//! used by the jobs module's import), the [`LibraryRepository`] port with its SQL adapter
//! (fenced, version-checked writes), the [`LibraryService`] (cache-aside pages and items under
//! the owner's cache generation; writes commit first, then invalidate; edit locks whose fencing
//! token every write carries to the database), and the `LibraryApi` controller.
//!
//! Depends on `core`, `database`, `cache` and `locks`; never on `auth` (guards come from `core`).

mod api;
mod config;
mod error;
mod model;
mod module;
mod service;
pub mod store;

pub use api::{LibraryApi, LibraryItemDto, LibraryItemInput};
pub use config::LibraryConfig;
pub use error::LibraryError;
pub use model::{
    ItemChanges, ItemType, LibraryItem, ListQuery, MAX_DURATION_SECONDS, MAX_TAGS, MAX_TEXT_CHARS, NewItem, Page,
    RawChanges, RawItem,
};
pub use module::LibraryModule;
pub use service::{LibraryService, LibraryServiceComponent, LibraryServiceImpl, LibraryServiceParams, LockView};
pub use store::{LibraryRepository, SqlLibraryRepository, Written};
