//! The shared-state backend and the port bindings that pick an adapter for it.
//!
//! The backend is decided at start-up (Redis configured or not) and handed to the module as a
//! component parameter. Each port has a *binding*: a shaku component whose `build` returns the
//! Redis adapter or the memory adapter for that backend, so the rest of the app only ever sees
//! `Arc<dyn Port>`.

use crate::Redis;

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

/// Declares a port binding (a [`component!`](app_core::component) whose constructor picks the
/// adapter): a component whose interface is the port and whose parameter is the
/// [`SharedState`] (with the `params` form, also the adapters' own settings, as [`Bound`]),
/// building the matching adapter. Every module whose store has one memory and one Redis adapter
/// binds it this way, so the choice of backend reads the same everywhere:
///
/// ```ignore
/// app_redis::port_binding! {
///     LockStoreBinding: dyn LockStore { memory => MemoryLockStore::new(), redis(r) => RedisLockStore::new(r) }
/// }
/// app_redis::port_binding! {
///     SessionStoreBinding: dyn SessionStore, params(policy: SessionPolicy) {
///         memory => MemorySessionStore::new(policy),
///         redis(r) => RedisSessionStore::new(r, policy),
///     }
/// }
/// ```
#[macro_export]
macro_rules! port_binding {
    ($(#[$doc:meta])* $binding:ident: dyn $port:ident { memory => $memory:expr, redis($r:ident) => $redis:expr $(,)? }) => {
        ::app_core::component! {
            $(#[$doc])*
            pub $binding: dyn $port,
            inject(),
            params(state: $crate::SharedState) => match state {
                $crate::SharedState::Memory => Box::new($memory),
                $crate::SharedState::Redis($r) => Box::new($redis),
            }
        }
    };
    ($(#[$doc:meta])* $binding:ident: dyn $port:ident, params($p:ident: $params:ty) {
        memory => $memory:expr, redis($r:ident) => $redis:expr $(,)?
    }) => {
        ::app_core::component! {
            $(#[$doc])*
            pub $binding: dyn $port,
            inject(),
            params(bound: $crate::Bound<$params>) => {
                let $p = bound.params;
                match bound.state {
                    $crate::SharedState::Memory => Box::new($memory),
                    $crate::SharedState::Redis($r) => Box::new($redis),
                }
            }
        }
    };
}

/// The parameters of a binding declared with `port_binding!`'s `params` form: the backend and
/// the adapters' own settings.
#[derive(Debug, Clone, Default)]
pub struct Bound<P> {
    /// Memory or Redis.
    pub state: SharedState,
    /// The adapters' settings.
    pub params: P,
}
