//! The AuthModule and the binding that picks the session store's adapter.

use app_redis::SharedState;
use app_users::{UserRepository, UsersModule};
use shaku::{Component, Module, ModuleBuildContext, module};

use crate::{
    AuthServiceImpl,
    store::{MemorySessionStore, RedisSessionStore, SessionPolicy, SessionStore},
};

/// The session store binding's parameters: the backend and the lifetimes.
#[derive(Debug, Clone, Default)]
pub struct SessionStoreParams {
    /// Memory or Redis.
    pub state: SharedState,
    /// Lifetimes and limits.
    pub policy: SessionPolicy,
}

/// Binds [`SessionStore`] to the adapter of the backend chosen at start-up.
pub struct SessionStoreBinding;

impl<M: Module> Component<M> for SessionStoreBinding {
    type Interface = dyn SessionStore;
    type Parameters = SessionStoreParams;

    fn build(_: &mut ModuleBuildContext<M>, params: SessionStoreParams) -> Box<dyn SessionStore> {
        match params.state {
            SharedState::Memory => Box::new(MemorySessionStore::new(params.policy)),
            SharedState::Redis(redis) => Box::new(RedisSessionStore::new(redis, params.policy)),
        }
    }
}

module! {
    pub AuthModule {
        components = [SessionStoreBinding, AuthServiceImpl],
        providers = [],

        use UsersModule {
            components = [dyn UserRepository],
            providers = []
        }
    }
}
