//! The RedisModule: the shared-state ports, bound to the backend chosen at start-up.

use shaku::{ModuleBuilder, module};

use crate::{KvStoreBinding, PubSubBinding, RedisHealthBinding, SharedState};

// Exports `dyn KvStore`, `dyn PubSub` and `dyn RedisHealth`.
module! {
    pub RedisModule {
        components = [KvStoreBinding, PubSubBinding, RedisHealthBinding],
        providers = []
    }
}

impl RedisModule {
    /// A builder with every port bound to `state`; tests may override components before `build()`.
    pub fn with_state(state: SharedState) -> ModuleBuilder<RedisModule> {
        RedisModule::builder()
            .with_component_parameters::<KvStoreBinding>(state.clone())
            .with_component_parameters::<PubSubBinding>(state.clone())
            .with_component_parameters::<RedisHealthBinding>(state)
    }
}
