//! The library module: a user's songs, albums, playlists and podcasts.
//!
//! It owns the item record and its validation ([`NewItem::parse`], [`ItemChanges::parse`], also
//! used by the jobs module's import), the [`LibraryRepository`] port with its SQL adapter
//! (fenced, version-checked writes), the [`LibraryService`] (cache-aside pages and items under
//! the owner's cache generation; writes commit first, then invalidate; edit locks whose fencing
//! token every write carries to the database), and the `LibraryApi` controller.
//!
//! Its job types (`library.import`, `library.export`, in [`jobs`]) are registered with the jobs
//! module. Depends on `core`, `database`, `users` (its table's owner), `cache`, `locks` and
//! `jobs`; never on `auth` or `ratelimit` (guards come from `core`).

mod api;
mod config;
mod error;
pub mod jobs;
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
pub use module::{LibraryContainer, LibraryModule};
pub use service::{LibraryService, LibraryServiceComponent, LibraryServiceImpl, LibraryServiceParams, LockView};
pub use store::{LibraryRepository, SqlLibraryRepository, SqlLibraryRepositoryParameters, Written};
