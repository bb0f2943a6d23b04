//! The LockModule: the store binding and the service.

use std::sync::Arc;

use shaku::{Component, HasComponent, Module, ModuleBuildContext, module};

use crate::{
    Locks,
    store::{LockStore, MemoryLockStore, RedisLockStore},
};

app_redis::port_binding! {
    /// Binds [`LockStore`] to the adapter of the backend chosen at start-up.
    LockStoreBinding: dyn LockStore { memory => MemoryLockStore::new(), redis(r) => RedisLockStore::new(r) }
}

/// Builds [`Locks`] over the bound store.
pub struct LocksComponent;

impl<M: Module + HasComponent<dyn LockStore>> Component<M> for LocksComponent {
    type Interface = Locks;
    type Parameters = ();

    fn build(ctx: &mut ModuleBuildContext<M>, _: ()) -> Box<Locks> {
        let store: Arc<dyn LockStore> = M::build_component(ctx);
        Box::new(Locks::new(store))
    }
}

module! {
    pub LockModule {
        components = [LockStoreBinding, LocksComponent],
        providers = []
    }
}
