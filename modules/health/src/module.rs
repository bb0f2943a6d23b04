//! The HealthModule.

use app_database::{DatabaseModule, SqlDatabase};
use app_redis::{RedisHealth, RedisModule};
use shaku::module;

use crate::service::HealthServiceImpl;

module! {
    pub HealthModule {
        components = [HealthServiceImpl],
        providers = [],

        use RedisModule {
            components = [dyn RedisHealth],
            providers = []
        },

        use DatabaseModule {
            components = [dyn SqlDatabase],
            providers = []
        }
    }
}
