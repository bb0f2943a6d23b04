//! The locks module: the store binding and the service.

use app_core::{Context, ErrorCode, Module, ModuleError};
use app_redis::{RedisModule, SharedState};
use async_trait::async_trait;
use shaku::module;

use crate::{
    Locks,
    store::{LockStore, MemoryLockStore, RedisLockStore},
};

app_redis::port_binding! {
    /// Binds [`LockStore`] to the adapter of the backend chosen at start-up.
    LockStoreBinding: dyn LockStore { memory => MemoryLockStore::new(), redis(r) => RedisLockStore::new(r) }
}

app_core::component! {
    /// [`Locks`] over the bound store.
    pub LocksComponent: Locks,
    inject(store: dyn LockStore),
    params(_none: ()) => Box::new(Locks::new(store))
}

module! {
    pub LockContainer {
        components = [LockStoreBinding, LocksComponent],
        providers = []
    }
}

/// Token locks with fencing tokens, for the modules that import it (edit locks).
#[derive(Debug, Clone, Copy, Default)]
pub struct LockModule;

#[async_trait]
impl Module for LockModule {
    fn name(&self) -> &'static str {
        "locks"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(RedisModule)]
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        crate::error::CODES
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let state = (*ctx.get::<SharedState>()?).clone();
        ctx.container(LockContainer::builder().with_component_parameters::<LockStoreBinding>(state));
        Ok(())
    }
}
