//! The library repository port and its SQL adapter.

mod sql;

use async_trait::async_trait;
use shaku::Interface;
use uuid::Uuid;

pub use sql::{SqlLibraryRepository, SqlLibraryRepositoryParameters};

use crate::{ItemChanges, LibraryError, LibraryItem, ListQuery, NewItem, Page};

/// What a fenced write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    /// Done.
    Done(T),
    /// No such item (for this owner).
    NotFound,
    /// The item has seen a newer fencing token: this writer's lock was lost, nothing changed.
    Stale,
}

/// Where library items live: the SQL database is the source of truth (tests run the adapter on
/// real SQLite and PostgreSQL).
#[async_trait]
pub trait LibraryRepository: Interface {
    /// Creates an item owned by `owner`.
    async fn create(&self, owner: Uuid, item: NewItem) -> Result<LibraryItem, LibraryError>;

    /// Creates many items in one transaction (all or none).
    async fn create_many(&self, owner: Uuid, items: Vec<NewItem>) -> Result<Vec<LibraryItem>, LibraryError>;

    /// Inserts items with ids chosen by the caller, skipping ids that exist (so a batch can be
    /// inserted again after a crash without duplicates); how many were new. One transaction.
    async fn insert_missing(&self, owner: Uuid, items: Vec<(Uuid, NewItem)>) -> Result<u64, LibraryError>;

    /// The owner's item (another owner's reads as absent).
    async fn find(&self, owner: Uuid, id: Uuid) -> Result<Option<LibraryItem>, LibraryError>;

    /// One page of the owner's items, newest first, with the total.
    async fn list(&self, owner: Uuid, query: &ListQuery) -> Result<Page<LibraryItem>, LibraryError>;

    /// Applies `changes` if `fencing` is at least the newest fencing token the item has seen
    /// (and records it).
    async fn update(
        &self,
        owner: Uuid,
        id: Uuid,
        changes: &ItemChanges,
        fencing: u64,
    ) -> Result<Written<LibraryItem>, LibraryError>;

    /// Deletes the item if `fencing` is at least the newest fencing token it has seen.
    async fn delete(&self, owner: Uuid, id: Uuid, fencing: u64) -> Result<Written<()>, LibraryError>;

    /// Up to `limit` of the owner's items after `after` (oldest first), for exports that page
    /// through a whole library.
    async fn scan(&self, owner: Uuid, after: Option<Uuid>, limit: u32) -> Result<Vec<LibraryItem>, LibraryError>;
}
