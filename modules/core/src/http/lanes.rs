//! The event loops connections are served on (`server.threads`): each is a thread running a
//! single-threaded runtime, and each accepted connection is handed to the next one in turn and
//! stays there, with every task its requests spawn.
//!
//! Why not the shared work-stealing runtime: a guarded cached read wakes several tasks (the
//! connection, the Redis call that carries many requests' scripts, the replies), and on the
//! shared runtime every wake may hand work to another worker: a futex, a stolen task, frees on
//! another thread's heap, and on a busy machine a preempted worker. Measured on a 2-core VM
//! with the load generator and Redis beside the app (a guarded cached read, 64 connections):
//! 2 workers of the shared runtime spent 22.2-23.2 us of app CPU per request with 0.30 context
//! switches, two lanes 17.2-18.4 us with 0.24 (the README's Performance tricks).
//! `server.threads = 0` keeps the shared runtime, for few connections that carry many
//! concurrent HTTP/2 streams (one connection's streams stay on its lane).

use std::{
    cell::Cell,
    future::Future,
    io,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::{runtime::Handle, sync::oneshot};

thread_local! {
    static ON_LANE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is one of the server's event loops. Such a thread lives exactly as long
/// as its single-threaded runtime, so what a module keeps per thread there (a Redis connection
/// whose task runs on that runtime) never outlives the runtime it needs.
pub fn on_lane() -> bool {
    ON_LANE.with(Cell::get)
}

/// How long a stopping lane waits for blocking work its requests started (password hashing).
const BLOCKING_GRACE: Duration = Duration::from_secs(5);

/// The lanes of one server, or none (the caller's runtime serves).
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
}

struct Lane {
    handle: Handle,
    /// Dropped (by [`Lanes::stop`] or with the server's future), the lane's thread ends.
    stop: Option<oneshot::Sender<()>>,
    /// Resolves once the lane's runtime, and every task still on it, is gone.
    gone: oneshot::Receiver<()>,
}

impl Lanes {
    /// Starts `count` lanes; `0` starts none.
    pub(crate) fn start(count: usize) -> io::Result<Lanes> {
        let mut lanes = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let (went, gone) = oneshot::channel();
            std::thread::Builder::new().name(format!("http-{i}")).spawn(move || {
                ON_LANE.with(|on| on.set(true));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_timeout(BLOCKING_GRACE);
                let _ = went.send(());
            })?;
            lanes.push(Lane { handle, stop: Some(stop), gone });
        }
        Ok(Lanes { lanes, next: AtomicUsize::new(0) })
    }

    /// Runs `task` on the next lane in turn (on the caller's runtime without lanes). `task` is
    /// made on that lane, so what it registers (a socket, a timer) belongs to the lane.
    pub(crate) fn spawn<F, Fut>(&self, task: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.lanes.is_empty() {
            tokio::spawn(async move { task().await });
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        self.lanes[i].handle.spawn(async move { task().await });
    }

    /// Ends every lane once the tasks on it are done or dropped.
    pub(crate) async fn stop(mut self) {
        for lane in &mut self.lanes {
            lane.stop.take();
        }
        for lane in std::mem::take(&mut self.lanes) {
            let _ = lane.gone.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a task ran: its thread's name and whether that thread is a lane.
    async fn ran_on(lanes: &Lanes) -> (String, bool) {
        let (tx, rx) = oneshot::channel();
        lanes.spawn(move || async move {
            let _ = tx.send((std::thread::current().name().unwrap_or_default().to_owned(), on_lane()));
        });
        rx.await.expect("the task ran")
    }

    #[tokio::test]
    async fn tasks_go_to_the_lanes_in_turn_and_the_lanes_end_when_stopped() {
        let lanes = Lanes::start(2).expect("lanes");
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(ran_on(&lanes).await);
        }
        let expected = ["http-0", "http-1", "http-0", "http-1"].map(|n| (n.to_owned(), true));
        assert_eq!(seen, expected);
        assert!(!on_lane(), "the caller's thread is no lane");
        // A task still running when the lanes stop is dropped with its lane.
        let (_keep, never) = oneshot::channel::<()>();
        lanes.spawn(move || async move {
            let _ = never.await;
        });
        tokio::time::timeout(Duration::from_secs(10), lanes.stop()).await.expect("the lanes ended");
    }

    #[tokio::test]
    async fn without_lanes_tasks_run_on_the_callers_runtime() {
        let lanes = Lanes::start(0).expect("no lanes");
        let (name, lane) = ran_on(&lanes).await;
        assert!(!lane);
        assert!(!name.starts_with("http-"), "{name}");
        lanes.stop().await;
    }
}
