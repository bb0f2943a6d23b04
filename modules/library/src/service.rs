//! The logic behind the `/library` routes: cache-aside reads under the owner's generation,
//! writes that commit first and invalidate second, and edit locks whose fencing token every
//! write carries to the database.

use std::{sync::Arc, time::Duration};

use app_cache::{CacheManager, Namespace, UserScope};
use app_locks::{Lease, Locks};
use async_trait::async_trait;
use shaku::Interface;
use uuid::Uuid;

use crate::{
    ItemChanges, LibraryConfig, LibraryError, LibraryItem, ListQuery, NewItem, Page,
    store::{LibraryRepository, Written},
};

/// A lock as its item's owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockView {
    /// Whether anyone holds it.
    pub locked: bool,
    /// Time left on the lease.
    pub expires_in: Duration,
    /// Whether the holder is the caller (another tab or device of theirs counts as another holder
    /// for writes, but shows up here).
    pub held_by_me: bool,
}

/// Reading and editing a user's library.
#[async_trait]
pub trait LibraryService: Interface {
    /// Adds an item.
    async fn create(&self, owner: Uuid, item: NewItem) -> Result<LibraryItem, LibraryError>;
    /// Adds many items at once (all or none), for imports.
    async fn create_many(&self, owner: Uuid, items: Vec<NewItem>) -> Result<Vec<LibraryItem>, LibraryError>;
    /// Adds items with ids of the caller's choosing, skipping ids that exist (imports that may run
    /// again); how many were new.
    async fn import(&self, owner: Uuid, items: Vec<(Uuid, NewItem)>) -> Result<u64, LibraryError>;
    /// One item (through the cache).
    async fn get(&self, owner: Uuid, id: Uuid) -> Result<LibraryItem, LibraryError>;
    /// One page (through the cache).
    async fn list(&self, owner: Uuid, query: &ListQuery) -> Result<Page<LibraryItem>, LibraryError>;
    /// Changes an item: under the caller's lock (`lock_token`), or under a short lock taken here.
    async fn update(
        &self,
        owner: Uuid,
        id: Uuid,
        changes: ItemChanges,
        lock_token: Option<&str>,
    ) -> Result<LibraryItem, LibraryError>;
    /// Deletes an item, with the same locking as [`update`](Self::update).
    async fn delete(&self, owner: Uuid, id: Uuid, lock_token: Option<&str>) -> Result<(), LibraryError>;
    /// Takes the item's edit lock.
    async fn lock(&self, owner: Uuid, id: Uuid) -> Result<Lease, LibraryError>;
    /// The item's lock.
    async fn lock_status(&self, owner: Uuid, id: Uuid) -> Result<LockView, LibraryError>;
    /// Renews the caller's lock.
    async fn extend_lock(&self, owner: Uuid, id: Uuid, token: &str) -> Result<Duration, LibraryError>;
    /// Releases the caller's lock.
    async fn unlock(&self, owner: Uuid, id: Uuid, token: &str) -> Result<(), LibraryError>;
    /// Up to `limit` items after `after`, oldest first, read from the database (exports).
    async fn scan(&self, owner: Uuid, after: Option<Uuid>, limit: u32) -> Result<Vec<LibraryItem>, LibraryError>;
}

/// The service over the repository, the cache and the locks.
pub struct LibraryServiceImpl {
    repo: Arc<dyn LibraryRepository>,
    cache: Arc<CacheManager>,
    locks: Arc<Locks>,
    config: LibraryConfig,
    ns: Namespace,
}

/// The lock resource of an item.
fn resource(id: Uuid) -> String {
    format!("lib:{id}")
}

impl LibraryServiceImpl {
    /// The service (outside the container, e.g. tests).
    pub fn new(
        repo: Arc<dyn LibraryRepository>,
        cache: Arc<CacheManager>,
        locks: Arc<Locks>,
        config: LibraryConfig,
    ) -> Self {
        // Bump the version when `LibraryItem` or `Page` change shape.
        let ns = cache.user_namespace("lib", 1, config.cache_ttl);
        Self { repo, cache, locks, config, ns }
    }

    /// After a committed write: every cached page and item of the owner is dead.
    async fn invalidate(&self, owner: Uuid) {
        self.cache.invalidate(&self.ns, &UserScope::new(owner)).await;
    }

    /// Runs a fenced write under the caller's lock, or under a short lock of its own.
    async fn fenced<T, F, Fut>(
        &self,
        owner: Uuid,
        id: Uuid,
        lock_token: Option<&str>,
        write: F,
    ) -> Result<T, LibraryError>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = Result<Written<T>, LibraryError>>,
    {
        // A 404 comes before any lock answer: nobody learns whether someone else's item is locked.
        self.owned(owner, id).await?;
        let resource = resource(id);
        let written = match lock_token {
            Some(token) => {
                let fencing = self.locks.verify(&resource, token).await?;
                write(fencing).await?
            }
            None => {
                let owner_label = owner.to_string();
                self.locks
                    .with_lock(&resource, &owner_label, self.config.write_lock_ttl, |lease| write(lease.fencing))
                    .await??
            }
        };
        let out = match written {
            Written::Done(out) => out,
            Written::NotFound => return Err(LibraryError::NotFound),
            Written::Stale => return Err(LibraryError::Stale),
        };
        self.invalidate(owner).await;
        Ok(out)
    }

    async fn owned(&self, owner: Uuid, id: Uuid) -> Result<(), LibraryError> {
        self.get(owner, id).await.map(drop)
    }
}

#[async_trait]
impl LibraryService for LibraryServiceImpl {
    async fn create(&self, owner: Uuid, item: NewItem) -> Result<LibraryItem, LibraryError> {
        let item = self.repo.create(owner, item).await?;
        self.invalidate(owner).await;
        Ok(item)
    }

    async fn create_many(&self, owner: Uuid, items: Vec<NewItem>) -> Result<Vec<LibraryItem>, LibraryError> {
        let items = self.repo.create_many(owner, items).await?;
        self.invalidate(owner).await;
        Ok(items)
    }

    async fn import(&self, owner: Uuid, items: Vec<(Uuid, NewItem)>) -> Result<u64, LibraryError> {
        let inserted = self.repo.insert_missing(owner, items).await?;
        // Always: an earlier run of the same batch may have committed and died before invalidating.
        self.invalidate(owner).await;
        Ok(inserted)
    }

    async fn get(&self, owner: Uuid, id: Uuid) -> Result<LibraryItem, LibraryError> {
        let item = format!("item:{id}");
        // A missing item is cached as `None` too, so probing ids costs the database nothing.
        let found: Option<LibraryItem> =
            self.cache.get_or_load(&self.ns, &UserScope::new(owner), &item, || self.repo.find(owner, id)).await?;
        found.ok_or(LibraryError::NotFound)
    }

    async fn list(&self, owner: Uuid, query: &ListQuery) -> Result<Page<LibraryItem>, LibraryError> {
        let item = query.cache_item();
        self.cache.get_or_load(&self.ns, &UserScope::new(owner), &item, || self.repo.list(owner, query)).await
    }

    async fn update(
        &self,
        owner: Uuid,
        id: Uuid,
        changes: ItemChanges,
        lock_token: Option<&str>,
    ) -> Result<LibraryItem, LibraryError> {
        let repo = &self.repo;
        let changes = &changes;
        self.fenced(owner, id, lock_token, |fencing| async move { repo.update(owner, id, changes, fencing).await })
            .await
    }

    async fn delete(&self, owner: Uuid, id: Uuid, lock_token: Option<&str>) -> Result<(), LibraryError> {
        let repo = &self.repo;
        self.fenced(owner, id, lock_token, |fencing| async move { repo.delete(owner, id, fencing).await }).await
    }

    async fn lock(&self, owner: Uuid, id: Uuid) -> Result<Lease, LibraryError> {
        self.owned(owner, id).await?;
        Ok(self.locks.acquire(&resource(id), &owner.to_string(), self.config.lock_ttl).await?)
    }

    async fn lock_status(&self, owner: Uuid, id: Uuid) -> Result<LockView, LibraryError> {
        self.owned(owner, id).await?;
        let status = self.locks.status(&resource(id)).await?;
        let me = owner.to_string();
        Ok(LockView {
            locked: status.locked,
            expires_in: status.expires_in,
            held_by_me: status.held_by.as_deref() == Some(me.as_str()),
        })
    }

    async fn extend_lock(&self, owner: Uuid, id: Uuid, token: &str) -> Result<Duration, LibraryError> {
        self.owned(owner, id).await?;
        Ok(self.locks.extend(&resource(id), token, self.config.lock_ttl).await?)
    }

    async fn unlock(&self, owner: Uuid, id: Uuid, token: &str) -> Result<(), LibraryError> {
        self.owned(owner, id).await?;
        Ok(self.locks.release(&resource(id), token).await?)
    }

    async fn scan(&self, owner: Uuid, after: Option<Uuid>, limit: u32) -> Result<Vec<LibraryItem>, LibraryError> {
        self.repo.scan(owner, after, limit).await
    }
}

/// The service's parameters.
#[derive(Debug, Clone, Default)]
pub struct LibraryServiceParams {
    /// `[library]`.
    pub config: LibraryConfig,
}

app_core::component! {
    /// The [`LibraryService`] over the injected repository, cache and locks.
    pub LibraryServiceComponent: dyn LibraryService,
    inject(repo: dyn LibraryRepository, cache: CacheManager, locks: Locks),
    params(p: LibraryServiceParams) => Box::new(LibraryServiceImpl::new(repo, cache, locks, p.config))
}
