//! The users module: accounts in SQL, cached profiles, and the `/users` routes.

use app_cache::{CacheContainer, CacheManager, CacheModule};
use app_core::{Context, Controller, ErrorCode, Migration, Module, ModuleError, config::Section};
use app_database::{DatabaseContainer, DatabaseModule, SqlDatabase};
use async_trait::async_trait;
use shaku::module;

use crate::{UserRepositoryComponent, UserRepositoryParams, UsersApi, UsersConfig, UsersServiceComponent};

module! {
    pub UsersContainer {
        components = [UserRepositoryComponent, UsersServiceComponent],
        providers = [],

        use DatabaseContainer {
            components = [dyn SqlDatabase],
            providers = []
        },

        use CacheContainer {
            components = [CacheManager],
            providers = []
        }
    }
}

/// Accounts: the `users` table, profiles read through the cache, `/api/v1/users`. Its
/// container exports the user repository (for `auth`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersModule;

#[async_trait]
impl Module for UsersModule {
    fn name(&self) -> &'static str {
        "users"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(DatabaseModule), Box::new(CacheModule)]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<UsersConfig>())
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![Migration::new(20261124000001, "users", include_str!("../migrations/20261124000001_users.sql"))]
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        crate::error::CODES
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let params = UserRepositoryParams { cache_ttl: ctx.config::<UsersConfig>().cache_ttl };
        let container = ctx.container(
            UsersContainer::builder(ctx.get()?, ctx.get()?)
                .with_component_parameters::<UserRepositoryComponent>(params),
        );
        ctx.controller(Controller::new(UsersApi::new(&*container)));
        Ok(())
    }
}
