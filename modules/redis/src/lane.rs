//! A connection and a coalescer per event loop: on a thread of the server's
//! (`app_core::http::on_lane`), commands go over a connection whose task runs on that thread's
//! runtime, and concurrent requests' scripts are combined with the same thread's requests only.
//! A guarded read then stays on one thread from the socket to Redis and back: no other thread
//! is woken to write the command, to read the reply or to run the request again. Elsewhere
//! (background work on the shared runtime, this crate's own tests) commands go through the pool.
//!
//! Each lane opens one more connection per Redis it talks to (made on its first command, with
//! the pool's configuration and reconnect policy); it closes with the lane.

use std::{
    cell::RefCell,
    sync::{Arc, Weak},
};

use fred::prelude::*;

use crate::batch::Coalescer;

/// What a lane keeps for one Redis.
pub(crate) struct LaneConnection {
    pub(crate) client: Client,
    pub(crate) coalescer: Arc<Coalescer>,
}

thread_local! {
    /// By the address of the Redis's shared state (held weakly: a Redis dropped while the lane
    /// lives leaves an entry that is pruned, never reused).
    static CONNECTIONS: RefCell<Vec<(Weak<()>, Arc<LaneConnection>)>> = const { RefCell::new(Vec::new()) };
}

/// This lane's connection to the Redis whose identity is `id`, made with `make` the first time;
/// `None` off the lanes.
pub(crate) fn connection(id: &Arc<()>, make: impl FnOnce() -> Client) -> Option<Arc<LaneConnection>> {
    if !app_core::http::on_lane() {
        return None;
    }
    CONNECTIONS.with(|connections| {
        let mut connections = connections.borrow_mut();
        if let Some((_, found)) = connections.iter().find(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(id))) {
            return Some(found.clone());
        }
        connections.retain(|(owner, _)| owner.strong_count() > 0);
        let client = make();
        let _task = client.connect();
        let made = Arc::new(LaneConnection { client, coalescer: Arc::default() });
        connections.push((Arc::downgrade(id), made.clone()));
        Some(made)
    })
}
