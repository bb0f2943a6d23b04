//! The library module: items in SQL, cached pages and items, edit locks, the import and export
//! jobs, and the `/library` routes.

use std::sync::Arc;

use app_cache::{CacheContainer, CacheManager, CacheModule};
use app_core::{Context, Controller, Migration, Module, ModuleError, config::Section};
use app_database::{DatabaseContainer, DatabaseModule, SqlDatabase};
use app_jobs::{JobRegistry, JobsModule};
use app_locks::{LockContainer, LockModule, Locks};
use app_users::UsersModule;
use async_trait::async_trait;
use shaku::{HasComponent, module};

use crate::{
    LibraryApi, LibraryConfig, LibraryService, LibraryServiceComponent, LibraryServiceParams, SqlLibraryRepository,
    SqlLibraryRepositoryParameters,
    jobs::{LibraryExport, LibraryImport},
};

module! {
    pub LibraryContainer {
        components = [SqlLibraryRepository, LibraryServiceComponent],
        providers = [],

        use DatabaseContainer {
            components = [dyn SqlDatabase],
            providers = []
        },

        use CacheContainer {
            components = [CacheManager],
            providers = []
        },

        use LockContainer {
            components = [Locks],
            providers = []
        }
    }
}

/// A user's songs, albums, playlists and podcasts: the `library_items` table (whose owner is a
/// row of `users`), cached reads, edit locks, `/api/v1/library`, and the `library.import` and
/// `library.export` job types.
#[derive(Debug, Clone, Copy, Default)]
pub struct LibraryModule;

#[async_trait]
impl Module for LibraryModule {
    fn name(&self) -> &'static str {
        "library"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![
            Box::new(DatabaseModule),
            Box::new(UsersModule),
            Box::new(CacheModule),
            Box::new(LockModule),
            Box::new(JobsModule),
        ]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<LibraryConfig>())
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![
            Migration::new(
                20261201000001,
                "library_items",
                include_str!("../migrations/20261201000001_library_items.sql"),
            ),
            Migration::new(
                20261204000001,
                "library_usage",
                include_str!("../migrations/20261204000001_library_usage.sql"),
            ),
            Migration::new(
                20261204000003,
                "library_items_scan",
                include_str!("../migrations/20261204000003_library_items_scan.sql"),
            ),
        ]
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let config = ctx.config::<LibraryConfig>().clone();
        tracing::info!(max_items_per_user = config.max_items_per_user, "library bounds: items per user");
        let repository = SqlLibraryRepositoryParameters { max_items: config.max_items_per_user };
        let params = LibraryServiceParams { config };
        let container = ctx.container(
            LibraryContainer::builder(ctx.get()?, ctx.get()?, ctx.get()?)
                .with_component_parameters::<SqlLibraryRepository>(repository)
                .with_component_parameters::<LibraryServiceComponent>(params),
        );
        let service: Arc<dyn LibraryService> = container.resolve();
        let jobs = ctx.get::<JobRegistry>()?;
        jobs.register(LibraryImport::new(service.clone()));
        jobs.register(LibraryExport::new(service));
        ctx.controller(Controller::new(LibraryApi::new(&*container)));
        Ok(())
    }
}
