//! The LockModule: the store binding and the service.

use std::sync::Arc;

use app_redis::SharedState;
use shaku::{Component, HasComponent, Module, ModuleBuildContext, module};

use crate::{
    Locks,
    store::{LockStore, MemoryLockStore, RedisLockStore},
};

/// Binds [`LockStore`] to the adapter of the backend chosen at start-up.
pub struct LockStoreBinding;

impl<M: Module> Component<M> for LockStoreBinding {
    type Interface = dyn LockStore;
    type Parameters = SharedState;

    fn build(_: &mut ModuleBuildContext<M>, state: SharedState) -> Box<dyn LockStore> {
        match state {
            SharedState::Memory => Box::new(MemoryLockStore::new()),
            SharedState::Redis(redis) => Box::new(RedisLockStore::new(redis)),
        }
    }
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
