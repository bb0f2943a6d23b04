//! The LibraryModule.

use app_cache::{CacheManager, CacheModule};
use app_database::{DatabaseModule, SqlDatabase};
use app_locks::{LockModule, Locks};
use shaku::module;

use crate::{LibraryServiceComponent, SqlLibraryRepository};

module! {
    pub LibraryModule {
        components = [SqlLibraryRepository, LibraryServiceComponent],
        providers = [],

        use DatabaseModule {
            components = [dyn SqlDatabase],
            providers = []
        },

        use CacheModule {
            components = [CacheManager],
            providers = []
        },

        use LockModule {
            components = [Locks],
            providers = []
        }
    }
}
