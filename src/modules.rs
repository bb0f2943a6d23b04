//! The app's modules: the one list, as NestJS's `AppModule.imports`. A module brings what it
//! imports (the infrastructure it needs), so only the features and the app-level modules are
//! named here.

use app_auth::AuthModule;
use app_cache::CacheModule;
use app_core::module::{Module, ModuleSet};
use app_health::HealthModule;
use app_jobs::JobsModule;
use app_library::LibraryModule;
use app_ratelimit::RateLimitModule;
use app_users::UsersModule;

/// Every module of the app, resolved (imports first, each once).
pub fn modules() -> ModuleSet {
    let list: Vec<Box<dyn Module>> = vec![
        Box::new(HealthModule),
        Box::new(RateLimitModule),
        Box::new(AuthModule),
        Box::new(UsersModule),
        Box::new(LibraryModule),
        Box::new(JobsModule),
        Box::new(CacheModule),
    ];
    ModuleSet::new(list)
}
