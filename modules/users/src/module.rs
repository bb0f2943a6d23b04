//! The UsersModule.

use app_cache::{CacheManager, CacheModule};
use app_database::{DatabaseModule, SqlDatabase};
use shaku::module;

use crate::{UserRepositoryComponent, UsersServiceImpl};

module! {
    pub UsersModule {
        components = [UserRepositoryComponent, UsersServiceImpl],
        providers = [],

        use DatabaseModule {
            components = [dyn SqlDatabase],
            providers = []
        },

        use CacheModule {
            components = [CacheManager],
            providers = []
        }
    }
}
