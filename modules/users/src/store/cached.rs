//! The cache-aside decorator of the SQL repository: profile reads go through the cache, and
//! every write commits to the database first and then invalidates the user's entry. Being the
//! `UserRepository` the container hands out, no write path (the routes, auth's role changes,
//! the CLI) can forget the invalidation. Credentials are never cached.

use std::sync::Arc;

use app_cache::{CacheManager, Namespace, UserScope};
use app_core::Role;
use app_database::SqlDatabase;
use async_trait::async_trait;
use uuid::Uuid;

use super::{SqlUserRepository, UserRepository};
use crate::{Credentials, Email, NewUser, User, UserName, UsersError};

/// Users in SQL, profiles cached.
pub struct CachedUserRepository {
    sql: SqlUserRepository,
    cache: Arc<CacheManager>,
    ns: Namespace,
}

/// The cache entry of a user's profile lives in the user's scope (its generation is bumped by
/// every write), under the same `{u:<id>}` hash tag as the user's sessions.
const PROFILE: &str = "profile";

impl CachedUserRepository {
    /// The repository over `db`, cached in `cache` for `ttl`.
    pub fn new(db: Arc<dyn SqlDatabase>, cache: Arc<CacheManager>, ttl: std::time::Duration) -> Self {
        // Bump the version when `User` changes shape.
        let ns = cache.user_namespace("user", 1, ttl);
        Self { sql: SqlUserRepository::new(db), cache, ns }
    }

    async fn invalidate(&self, id: Uuid) {
        self.cache.invalidate(&self.ns, &UserScope::new(id)).await;
    }
}

#[async_trait]
impl UserRepository for CachedUserRepository {
    async fn create(&self, user: NewUser) -> Result<User, UsersError> {
        let user = self.sql.create(user).await?;
        // A read of this id before it existed may have cached "absent".
        self.invalidate(user.id).await;
        Ok(user)
    }

    async fn find(&self, id: Uuid) -> Result<Option<User>, UsersError> {
        self.cache.get_or_load(&self.ns, &UserScope::new(id), PROFILE, || self.sql.find(id)).await
    }

    async fn find_credentials(&self, email: &Email) -> Result<Option<Credentials>, UsersError> {
        self.sql.find_credentials(email).await
    }

    async fn update_name(&self, id: Uuid, name: &UserName) -> Result<Option<User>, UsersError> {
        let user = self.sql.update_name(id, name).await?;
        self.invalidate(id).await;
        Ok(user)
    }

    async fn set_role(&self, id: Uuid, role: Role) -> Result<Option<User>, UsersError> {
        let user = self.sql.set_role(id, role).await?;
        self.invalidate(id).await;
        Ok(user)
    }

    async fn delete(&self, id: Uuid) -> Result<bool, UsersError> {
        let existed = self.sql.delete(id).await?;
        self.invalidate(id).await;
        Ok(existed)
    }
}

/// The repository's parameters.
#[derive(Debug, Clone)]
pub struct UserRepositoryParams {
    /// How long a cached profile lives (`users.cache_ttl`).
    pub cache_ttl: std::time::Duration,
}

impl Default for UserRepositoryParams {
    fn default() -> Self {
        Self { cache_ttl: crate::UsersConfig::default().cache_ttl }
    }
}

app_core::component! {
    /// Binds [`UserRepository`] to the cached SQL repository.
    pub UserRepositoryComponent: dyn UserRepository,
    inject(db: dyn SqlDatabase, cache: CacheManager),
    params(p: UserRepositoryParams) => Box::new(CachedUserRepository::new(db, cache, p.cache_ttl))
}
