//! The user repository port and its SQL adapter.

mod cached;
mod sql;

use app_core::Role;
use async_trait::async_trait;
use shaku::Interface;
use uuid::Uuid;

pub use cached::{CachedUserRepository, UserRepositoryComponent, UserRepositoryParams};
pub use sql::SqlUserRepository;

use crate::{Credentials, Email, NewUser, User, UserName, UsersError};

/// Where accounts live. The SQL adapter is the source of truth (tests run it on real SQLite and
/// PostgreSQL); the container hands out its cache-aside decorator.
#[async_trait]
pub trait UserRepository: Interface {
    /// Creates an account with a fresh UUID v7; `EmailTaken` when the email is in use.
    async fn create(&self, user: NewUser) -> Result<User, UsersError>;

    /// The account with this id.
    async fn find(&self, id: Uuid) -> Result<Option<User>, UsersError>;

    /// The account with this (normalized) email, with its password hash, for login.
    async fn find_credentials(&self, email: &Email) -> Result<Option<Credentials>, UsersError>;

    /// Renames an account; `None` when it does not exist.
    async fn update_name(&self, id: Uuid, name: &UserName) -> Result<Option<User>, UsersError>;

    /// Changes an account's role; `None` when it does not exist.
    async fn set_role(&self, id: Uuid, role: Role) -> Result<Option<User>, UsersError>;

    /// Deletes an account; whether it existed.
    async fn delete(&self, id: Uuid) -> Result<bool, UsersError>;
}
