//! The AppModule: the feature modules composed, as NestJS's AppModule imports them.
//!
//! Async set-up happens before any module is built: Redis starts connecting, the pool opens,
//! migrations run. The ready handles go into the modules as component parameters, so building
//! is synchronous and cannot fail half-way. Tests build the same modules through
//! [`build_modules`] and may override components with [`Overrides`].

use std::sync::Arc;

use app_auth::{
    AuthModule, AuthService, AuthServiceImpl, AuthServiceImplParameters, SessionStoreBinding, SessionStoreParams,
};
use app_cache::{CacheManager, CacheManagerComponent, CacheManagerParams, CacheModule, CacheStoreBinding};
use app_core::metrics::Metrics;
use app_database::{Database, DatabaseModule, SqlDatabase};
use app_health::{HealthModule, HealthService, HealthServiceImpl, HealthServiceImplParameters};
use app_jobs::{
    JobRegistry, JobStoreBinding, JobStoreParams, JobsModule, JobsService, JobsServiceComponent, JobsServiceParams,
    store::JobStore,
};
use app_library::{LibraryModule, LibraryService, LibraryServiceComponent, LibraryServiceParams};
use app_locks::{LockModule, LockStoreBinding, Locks};
use app_ratelimit::{RateLimitModule, RateLimitStoreBinding, RateLimiterComponent, RateLimiterParams, RateLimits};
use app_redis::{KvStore, PubSub, RedisHealth, RedisModule, SharedState};
use app_users::{UserRepository, UserRepositoryComponent, UserRepositoryParams, UsersModule, UsersService};
use shaku::{ModuleBuilder, module};

use crate::{app::Backends, config::AppConfig};

// shaku's generated `AppModule::builder` takes one argument per imported module.
#[allow(clippy::too_many_arguments)]
mod composed {
    use super::*;

    module! {
        pub AppModule {
            components = [],
            providers = [],

            use RedisModule {
                components = [dyn KvStore, dyn PubSub, dyn RedisHealth],
                providers = []
            },

            use DatabaseModule {
                components = [dyn SqlDatabase],
                providers = []
            },

            use HealthModule {
                components = [dyn HealthService],
                providers = []
            },

            use CacheModule {
                components = [CacheManager],
                providers = []
            },

            use LockModule {
                components = [Locks],
                providers = []
            },

            use LibraryModule {
                components = [dyn LibraryService],
                providers = []
            },

            use JobsModule {
                components = [dyn JobStore, JobRegistry, JobsService],
                providers = []
            },

            use UsersModule {
                components = [dyn UserRepository, dyn UsersService],
                providers = []
            },

            use AuthModule {
                components = [dyn AuthService],
                providers = []
            },

            use RateLimitModule {
                components = [dyn RateLimits],
                providers = []
            }
        }
    }
}

pub use composed::AppModule;

/// A change to one module's builder before it is built (component overrides in tests).
pub type Customize<M> = Box<dyn FnOnce(ModuleBuilder<M>) -> ModuleBuilder<M> + Send>;

/// Component overrides, per module. Production passes none.
#[derive(Default)]
pub struct Overrides {
    /// Applied to the RedisModule builder.
    pub redis: Option<Customize<RedisModule>>,
    /// Applied to the DatabaseModule builder.
    pub database: Option<Customize<DatabaseModule>>,
    /// Applied to the HealthModule builder.
    pub health: Option<Customize<HealthModule>>,
    /// Applied to the CacheModule builder.
    pub cache: Option<Customize<CacheModule>>,
    /// Applied to the LockModule builder.
    pub locks: Option<Customize<LockModule>>,
    /// Applied to the LibraryModule builder.
    pub library: Option<Customize<LibraryModule>>,
    /// Applied to the JobsModule builder.
    pub jobs: Option<Customize<JobsModule>>,
    /// Applied to the UsersModule builder.
    pub users: Option<Customize<UsersModule>>,
    /// Applied to the AuthModule builder.
    pub auth: Option<Customize<AuthModule>>,
    /// Applied to the RateLimitModule builder.
    pub rate_limit: Option<Customize<RateLimitModule>>,
}

fn customize<M: shaku::Module>(builder: ModuleBuilder<M>, f: Option<Customize<M>>) -> ModuleBuilder<M> {
    match f {
        Some(f) => f(builder),
        None => builder,
    }
}

/// Builds every module from the connected resources.
pub fn build_modules(
    config: &AppConfig,
    backends: &Backends,
    database: Database,
    metrics: Metrics,
    overrides: Overrides,
) -> Arc<AppModule> {
    let state: SharedState = backends.state.clone();
    let redis = Arc::new(customize(RedisModule::with_state(state.clone()), overrides.redis).build());
    let db = Arc::new(customize(DatabaseModule::with_database(database), overrides.database).build());
    let rate_limit = RateLimitModule::builder()
        .with_component_parameters::<RateLimitStoreBinding>(state.clone())
        .with_component_parameters::<RateLimiterComponent>(RateLimiterParams {
        config: config.rate_limit.clone(),
        metrics: metrics.clone(),
    });
    let rate_limit = Arc::new(customize(rate_limit, overrides.rate_limit).build());
    let health = HealthModule::builder(redis.clone(), db.clone()).with_component_parameters::<HealthServiceImpl>(
        HealthServiceImplParameters { metrics: metrics.clone(), check_timeout: config.health.check_timeout },
    );
    let health = Arc::new(customize(health, overrides.health).build());
    let cache = CacheModule::builder()
        .with_component_parameters::<CacheStoreBinding>(backends.cache.clone())
        .with_component_parameters::<CacheManagerComponent>(CacheManagerParams {
        config: config.cache.clone(),
        metrics: metrics.clone(),
    });
    let cache = Arc::new(customize(cache, overrides.cache).build());
    let locks = LockModule::builder().with_component_parameters::<LockStoreBinding>(state.clone());
    let locks = Arc::new(customize(locks, overrides.locks).build());
    let library = LibraryModule::builder(db.clone(), cache.clone(), locks.clone())
        .with_component_parameters::<LibraryServiceComponent>(LibraryServiceParams { config: config.library.clone() });
    let library = Arc::new(customize(library, overrides.library).build());
    let jobs = JobsModule::builder(library.clone())
        .with_component_parameters::<JobStoreBinding>(JobStoreParams {
            state: state.clone(),
            retention: config.jobs.retention(),
        })
        .with_component_parameters::<JobsServiceComponent>(JobsServiceParams { config: config.jobs.clone() });
    let jobs = Arc::new(customize(jobs, overrides.jobs).build());
    let users = UsersModule::builder(db.clone(), cache.clone()).with_component_parameters::<UserRepositoryComponent>(
        UserRepositoryParams { cache_ttl: config.users.cache_ttl },
    );
    let users = Arc::new(customize(users, overrides.users).build());
    let auth = AuthModule::builder(users.clone())
        .with_component_parameters::<SessionStoreBinding>(SessionStoreParams {
            state,
            policy: config.auth.session_policy(),
        })
        .with_component_parameters::<AuthServiceImpl>(AuthServiceImplParameters { config: config.auth.clone() });
    let auth = Arc::new(customize(auth, overrides.auth).build());
    Arc::new(AppModule::builder(redis, db, health, cache, locks, library, jobs, users, auth, rate_limit).build())
}
