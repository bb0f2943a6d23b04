//! The UsersModule.

use app_database::{DatabaseModule, SqlDatabase};
use shaku::module;

use crate::{SqlUserRepository, UsersServiceImpl};

module! {
    pub UsersModule {
        components = [SqlUserRepository, UsersServiceImpl],
        providers = [],

        use DatabaseModule {
            components = [dyn SqlDatabase],
            providers = []
        }
    }
}
