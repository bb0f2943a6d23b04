//! The shared-state backend and the port bindings that pick an adapter for it.
//!
//! The backend is decided at start-up (Redis configured or not) and handed to the module as a
//! component parameter. Each port has a *binding*: a shaku component whose `build` returns the
//! Redis adapter or the memory adapter for that backend, so the rest of the app only ever sees
//! `Arc<dyn Port>`.

use crate::{
    KvStore, MemoryKvStore, MemoryPubSub, PubSub, Redis, RedisKvStore, RedisPubSub,
    probe::{MemoryHealth, RedisHealth, RedisServerHealth},
};

/// Where shared state lives.
#[derive(Clone, Debug, Default)]
pub enum SharedState {
    /// In this process: a single instance, lost on restart. The embedded default.
    #[default]
    Memory,
    /// In Redis: shared by every instance.
    Redis(Redis),
}

impl SharedState {
    /// `memory` or `redis`.
    pub fn name(&self) -> &'static str {
        match self {
            SharedState::Memory => "memory",
            SharedState::Redis(_) => "redis",
        }
    }

    /// The Redis client, on the Redis backend.
    pub fn redis(&self) -> Option<&Redis> {
        match self {
            SharedState::Memory => None,
            SharedState::Redis(redis) => Some(redis),
        }
    }
}

/// Declares a port binding: a component whose interface is the port and whose parameter is the
/// [`SharedState`], building the matching adapter. Every module whose store has one memory and one
/// Redis adapter binds it this way, so the choice of backend reads the same everywhere.
#[macro_export]
macro_rules! port_binding {
    ($(#[$doc:meta])* $binding:ident: dyn $port:ident { memory => $memory:expr, redis($r:ident) => $redis:expr $(,)? }) => {
        $(#[$doc])*
        pub struct $binding;

        impl<M: ::shaku::Module> ::shaku::Component<M> for $binding {
            type Interface = dyn $port;
            type Parameters = $crate::SharedState;

            fn build(
                _: &mut ::shaku::ModuleBuildContext<M>,
                state: $crate::SharedState,
            ) -> Box<dyn $port> {
                match state {
                    $crate::SharedState::Memory => Box::new($memory),
                    $crate::SharedState::Redis($r) => Box::new($redis),
                }
            }
        }
    };
}

port_binding! {
    /// Binds [`KvStore`] to its adapter.
    KvStoreBinding: dyn KvStore { memory => MemoryKvStore::new(), redis(r) => RedisKvStore::new(r) }
}

port_binding! {
    /// Binds [`PubSub`] to its adapter.
    PubSubBinding: dyn PubSub { memory => MemoryPubSub::new(), redis(r) => RedisPubSub::new(r) }
}

port_binding! {
    /// Binds [`RedisHealth`] to its adapter.
    RedisHealthBinding: dyn RedisHealth { memory => MemoryHealth, redis(r) => RedisServerHealth::new(r) }
}
