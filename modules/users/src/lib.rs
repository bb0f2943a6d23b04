//! The users module: accounts in SQL (the source of truth) and the `/users` routes.
//!
//! It owns the user record (id, normalized email, name, role, argon2id hash, timestamps), the
//! [`UserRepository`] port with its SQL adapter and the cache-aside decorator the container hands
//! out (profiles cached, writes invalidate), the [`UsersService`] behind the routes, and the
//! `UsersApi` controller. Password hashing and sessions belong to `auth`, which depends on this
//! crate; this crate must never depend on `auth` (guards come from `core`).

mod api;
mod config;
mod error;
mod model;
mod module;
mod service;
pub mod store;

pub use api::{UserDto, UsersApi};
pub use config::UsersConfig;
pub use error::{EMAIL_TAKEN, EmailTaken, UsersError};
pub use model::{Credentials, Email, NewUser, User, UserName};
pub use module::{UsersContainer, UsersModule};
pub use service::{UsersService, UsersServiceComponent, UsersServiceImpl};
pub use store::{
    CachedUserRepository, SqlUserRepository, UserRepository, UserRepositoryComponent, UserRepositoryParams,
};
