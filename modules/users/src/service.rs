//! The logic behind the `/users` routes.

use std::sync::Arc;

use async_trait::async_trait;
use shaku::Interface;
use uuid::Uuid;

use crate::{User, UserName, UserRepository, UsersError};

/// Reading and editing profiles.
#[async_trait]
pub trait UsersService: Interface {
    /// A user by id; `NotFound` when there is none.
    async fn get(&self, id: Uuid) -> Result<User, UsersError>;

    /// Renames a user; `NotFound` when there is none.
    async fn rename(&self, id: Uuid, name: &UserName) -> Result<User, UsersError>;
}

/// The service over the repository.
pub struct UsersServiceImpl {
    repo: Arc<dyn UserRepository>,
}

impl UsersServiceImpl {
    /// The service over `repo`.
    pub fn new(repo: Arc<dyn UserRepository>) -> Self {
        Self { repo }
    }
}

app_core::component! {
    /// The [`UsersService`] over the repository.
    pub UsersServiceComponent: dyn UsersService,
    inject(repo: dyn UserRepository),
    params(_none: ()) => Box::new(UsersServiceImpl::new(repo))
}

#[async_trait]
impl UsersService for UsersServiceImpl {
    async fn get(&self, id: Uuid) -> Result<User, UsersError> {
        self.repo.find(id).await?.ok_or(UsersError::NotFound)
    }

    async fn rename(&self, id: Uuid, name: &UserName) -> Result<User, UsersError> {
        self.repo.update_name(id, name).await?.ok_or(UsersError::NotFound)
    }
}
