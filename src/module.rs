//! The AppModule: the feature modules composed, as NestJS's AppModule imports them.
//!
//! Async set-up happens before any module is built: Redis starts connecting, the pool opens,
//! migrations run. The ready handles go into the modules as component parameters, so building
//! is synchronous and cannot fail half-way. Tests build the same modules through
//! [`build_modules`] and may override components with [`Overrides`].

use std::sync::Arc;

use app_core::metrics::Metrics;
use app_database::{Database, DatabaseModule, SqlDatabase};
use app_health::{HealthModule, HealthService, HealthServiceImpl, HealthServiceImplParameters};
use app_redis::{KvStore, PubSub, RedisHealth, RedisModule, SharedState};
use shaku::{ModuleBuilder, module};

use crate::config::AppConfig;

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
        }
    }
}

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
    state: SharedState,
    database: Database,
    metrics: Metrics,
    overrides: Overrides,
) -> Arc<AppModule> {
    let redis = Arc::new(customize(RedisModule::with_state(state), overrides.redis).build());
    let db = Arc::new(customize(DatabaseModule::with_database(database), overrides.database).build());
    let health = HealthModule::builder(redis.clone(), db.clone()).with_component_parameters::<HealthServiceImpl>(
        HealthServiceImplParameters { metrics, check_timeout: config.health.check_timeout },
    );
    let health = Arc::new(customize(health, overrides.health).build());
    Arc::new(AppModule::builder(redis, db, health).build())
}
