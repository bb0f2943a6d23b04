//! Scripts issued together, run together: inside [`Redis::batched`], the scripts a future
//! issues in one poll (say, the session check and a rate-limit policy joined concurrently)
//! are combined into one Lua script and sent as one EVALSHA: one round trip, one script call
//! and one `TIME` on the server. The parts keep their own KEYS and ARGV (the combined script
//! is generated per set of parts and arities, so each part reads its slices at fixed offsets,
//! with no bookkeeping arguments); on a cluster they are combined only when every key hashes
//! to one slot, and run separately (concurrently) otherwise.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
};

use futures::{FutureExt, future::BoxFuture};

use crate::{Arg, Redis, RedisError, Reply, Script};

/// Where a queued script's reply lands, and who waits for it.
#[derive(Default)]
struct Slot(Mutex<SlotState>);

#[derive(Default)]
struct SlotState {
    reply: Option<Result<Reply, RedisError>>,
    waker: Option<Waker>,
}

impl Slot {
    /// Leaves the reply and wakes its receiver, unless the receiver is polled by the task
    /// delivering it (`delivering`): [`Batched`] polls its inner future right after each
    /// delivery, so waking that task again would only cost it a spurious poll of the whole
    /// request.
    fn fill(&self, reply: Result<Reply, RedisError>, delivering: Option<&Waker>) {
        let waker = {
            let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
            state.reply = Some(reply);
            state.waker.take()
        };
        if let Some(waker) = waker
            && !delivering.is_some_and(|d| waker.will_wake(d))
        {
            waker.wake();
        }
    }
}

/// The delivering side of a slot. Dropped before it delivered (the batch went away), it
/// answers an error, so no receiver waits forever.
struct Sender(Option<Arc<Slot>>);

impl Sender {
    fn deliver(mut self, reply: Result<Reply, RedisError>, delivering: &Waker) {
        if let Some(slot) = self.0.take() {
            slot.fill(reply, Some(delivering));
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.fill(Err(RedisError::Unavailable("the batch was dropped".into())), None);
        }
    }
}

/// A queued script's reply to come.
pub(crate) struct PendingReply(Arc<Slot>);

impl Future for PendingReply {
    type Output = Result<Reply, RedisError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reply) = state.reply.take() {
            return Poll::Ready(reply);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The reply of [`Redis::eval`] to come. A small future: whoever holds it (a store's boxed
/// `async_trait` future, say) moves a few words, not the state of a whole client call.
/// Inside a batch the script is queued (and runs) once this exists; await it for the reply.
#[must_use = "await the reply: inside a batch the script runs whether or not it is awaited"]
pub struct Eval<'a>(EvalState<'a>);

enum EvalState<'a> {
    /// Queued in a batch: the reply the batch delivers.
    Queued(PendingReply),
    /// Outside a batch: the call on its own (boxed, as it is large).
    Alone(BoxFuture<'a, Result<Reply, RedisError>>),
}

impl<'a> Eval<'a> {
    pub(crate) fn queued(reply: PendingReply) -> Self {
        Self(EvalState::Queued(reply))
    }

    pub(crate) fn alone(call: impl Future<Output = Result<Reply, RedisError>> + Send + 'a) -> Self {
        Self(EvalState::Alone(Box::pin(call)))
    }
}

impl Future for Eval<'_> {
    type Output = Result<Reply, RedisError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            EvalState::Queued(reply) => Pin::new(reply).poll(cx),
            EvalState::Alone(call) => call.as_mut().poll(cx),
        }
    }
}

struct Queued {
    script: Script,
    keys: Vec<String>,
    args: Vec<Arg>,
    reply: Sender,
    /// Called with [`Redis::eval_coalesced`]: alone in its request's batch, it goes with other
    /// requests' calls.
    coalesce: bool,
}

type Queue = Arc<Mutex<Vec<Queued>>>;

tokio::task_local! {
    static BATCH: Queue;
}

/// Inside a batch, queues the script and returns its reply to come; outside, gives the
/// arguments back.
pub(crate) fn enqueue(
    script: &Script,
    keys: Vec<String>,
    args: Vec<Arg>,
    coalesce: bool,
) -> Result<PendingReply, (Vec<String>, Vec<Arg>)> {
    let Ok(queue) = BATCH.try_with(Arc::clone) else { return Err((keys, args)) };
    let slot = Arc::new(Slot::default());
    let reply = Sender(Some(slot.clone()));
    queue.lock().unwrap_or_else(|p| p.into_inner()).push(Queued { script: *script, keys, args, reply, coalesce });
    Ok(PendingReply(slot))
}

fn copy(err: &RedisError) -> RedisError {
    match err {
        RedisError::Unavailable(m) => RedisError::Unavailable(m.clone()),
        RedisError::Command(m) => RedisError::Command(m.clone()),
        RedisError::Config(m) => RedisError::Config(m.clone()),
    }
}

/// Where replies go, and the replies, one per sender and in order.
type Deliveries = (Vec<Sender>, Replies);

/// The replies of a batch's scripts.
enum Replies {
    /// Each script ran on its own.
    Each(Vec<Result<Reply, RedisError>>),
    /// The parts of one combined script's reply.
    Parts(Vec<Reply>),
    /// The combined script failed, for every part.
    Failed(RedisError),
}

impl Replies {
    /// The `n`th script's reply (each is taken once).
    fn take(&mut self, n: usize) -> Result<Reply, RedisError> {
        match self {
            Replies::Each(replies) => {
                replies.get_mut(n).map_or(Ok(Reply::Nil), |r| std::mem::replace(r, Ok(Reply::Nil)))
            }
            Replies::Parts(parts) => Ok(parts.get_mut(n).map_or(Reply::Nil, |r| std::mem::replace(r, Reply::Nil))),
            Replies::Failed(err) => Err(copy(err)),
        }
    }
}

/// A combination's parts, as (identity, key count, arg count).
type Parts = Vec<(usize, usize, usize)>;

thread_local! {
    /// The combined scripts this thread has run, by their parts' identities and arities: found
    /// without the registry's lock, which every core would otherwise take on every batch.
    /// (Scripts are interned, so a combination is the same whichever client made it.)
    static COMBINED: RefCell<Vec<(Parts, Script)>> = const { RefCell::new(Vec::new()) };
}

/// The script combining `queued`.
fn combined(redis: &Redis, queued: &[Queued]) -> Script {
    let key = || queued.iter().map(|q| (q.script.id(), q.keys.len(), q.args.len()));
    let known = COMBINED.with_borrow(|seen| seen.iter().find(|(k, _)| k.iter().copied().eq(key())).map(|(_, s)| *s));
    known.unwrap_or_else(|| {
        let script = redis.scripts().combined(queued.iter().map(|q| (&q.script, q.keys.len(), q.args.len())));
        COMBINED.with_borrow_mut(|seen| seen.push((key().collect(), script)));
        script
    })
}

/// Sends what was queued in one poll; the replies are delivered by [`Batched`].
async fn fire(redis: &Redis, mut queued: Vec<Queued>) -> Deliveries {
    if queued.len() == 1 {
        let Queued { script, keys, args, reply, coalesce } = queued.remove(0);
        let sent = if coalesce && redis.coalesces() {
            redis.coalesce(&script, keys, args).await
        } else {
            redis.eval_now(&script, keys, args).await
        };
        return (vec![reply], Replies::Each(vec![sent]));
    }
    let one_slot = !redis.is_clustered() || {
        let mut slots = queued.iter().flat_map(|q| q.keys.iter()).map(|k| fred::util::redis_keyslot(k.as_bytes()));
        let first = slots.next();
        slots.all(|s| Some(s) == first)
    };
    if !one_slot {
        let mut senders = Vec::with_capacity(queued.len());
        let runs: Vec<_> = queued
            .into_iter()
            .map(|Queued { script, keys, args, reply, .. }| {
                senders.push(reply);
                async move { redis.eval_now(&script, keys, args).await }
            })
            .collect();
        return (senders, Replies::Each(futures::future::join_all(runs).await));
    }
    let combined = combined(redis, &queued);
    let mut keys = Vec::with_capacity(queued.iter().map(|q| q.keys.len()).sum());
    let mut args = Vec::with_capacity(queued.iter().map(|q| q.args.len()).sum());
    let mut senders = Vec::with_capacity(queued.len());
    for q in queued {
        keys.extend(q.keys);
        args.extend(q.args);
        senders.push(q.reply);
    }
    match redis.eval_now(&combined, keys, args).await {
        Ok(reply) => (senders, Replies::Parts(reply.into_array())),
        Err(err) => (senders, Replies::Failed(err)),
    }
}

/// The future made by [`Redis::batched`].
struct Batched<'a, F> {
    inner: Pin<&'a mut F>,
    queue: Queue,
    redis: &'a Redis,
    /// The combined calls in flight (one, mostly), polled in this task with its waker. Not a
    /// `FuturesUnordered`: that one wakes its task again whenever it has polled all its
    /// futures, which here would cost a second poll of the whole request for nothing.
    runs: Vec<BoxFuture<'a, Deliveries>>,
}

impl<F: Future> Future for Batched<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // Whoever woke the task may be waiting inside the inner future, so it is polled on
        // entry; after that only when a reply reached it. (Polling it again right after firing
        // its scripts would cost a poll of the whole request for nothing: it only waits for
        // the replies. A wake-up meanwhile schedules another poll of the task anyway.)
        let mut poll_inner = true;
        loop {
            let mut i = 0;
            while i < this.runs.len() {
                match this.runs[i].as_mut().poll(cx) {
                    Poll::Ready((senders, mut replies)) => {
                        drop(this.runs.swap_remove(i));
                        for (n, slot) in senders.into_iter().enumerate() {
                            slot.deliver(replies.take(n), cx.waker());
                        }
                        poll_inner = true;
                    }
                    Poll::Pending => i += 1,
                }
            }
            if !poll_inner {
                return Poll::Pending;
            }
            poll_inner = false;
            if let Poll::Ready(out) = this.inner.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            let queued = std::mem::take(&mut *this.queue.lock().unwrap_or_else(|p| p.into_inner()));
            if queued.is_empty() {
                return Poll::Pending;
            }
            this.runs.push(fire(this.redis, queued).boxed());
        }
    }
}

impl Redis {
    /// Runs `fut`, combining the scripts it issues together (in one poll) into one EVALSHA.
    pub async fn batched<F: Future>(&self, fut: F) -> F::Output {
        let queue: Queue = Arc::default();
        let inner = std::pin::pin!(fut);
        let batched = Batched { inner, queue: queue.clone(), redis: self, runs: Vec::new() };
        BATCH.scope(queue, batched).await
    }
}

/// Calls from different requests, run together: while one combined call is in flight, the
/// calls that arrive queue up and go together in the next, as a database's group commit does.
/// Redis's cost of a call is mostly the system calls of reading it and writing its answer
/// (several microseconds on these machines, where the script itself costs about four), and
/// fred writes every EVALSHA on its own; a combined call of N requests pays them once. Idle,
/// a call goes out at once: the first call of a burst spawns the task that sends the batches
/// and that task ends when the queue is empty.
#[derive(Default)]
pub(crate) struct Coalescer(Mutex<CoalescerState>);

#[derive(Default)]
struct CoalescerState {
    queue: Vec<Queued>,
    /// Whether a task is sending the queue's batches.
    sending: bool,
}

/// The most calls of one script combined into one call: each count is a script of its own
/// on the server (the parts are unrolled), so this bounds how many are generated. At 64
/// connections a cap of 16 was reached by most calls (about 12 requests per call); with 32,
/// about 17 go together, and Redis and the app each spend about a microsecond less per request.
pub(crate) const MOST_COALESCED: usize = 32;

impl Redis {
    /// Runs a script as [`eval`](Self::eval) does, combined with the same script's concurrent
    /// calls from other requests into one EVALSHA (see [`Coalescer`]). Each call still runs
    /// atomically (calls in flight together have no order among them). For scripts of hot,
    /// independent, single-slot calls; on a cluster (where different keys mostly mean
    /// different slots) it is `eval`. A call waits at most the command timeout, the wait for
    /// the batch ahead of it included.
    pub fn eval_coalesced(&self, script: &Script, keys: Vec<String>, args: Vec<Arg>) -> Eval<'_> {
        if !self.coalesces() {
            return self.eval(script, keys, args);
        }
        // In a request's batch it travels with that request's other scripts; alone there, it
        // joins other requests' calls when the batch is sent.
        match enqueue(script, keys, args, true) {
            Ok(reply) => Eval::queued(reply),
            Err((keys, args)) => {
                let script = *script;
                Eval::alone(async move { self.coalesce(&script, keys, args).await })
            }
        }
    }

    /// Whether calls are coalesced here: not on a cluster, and only inside a runtime.
    fn coalesces(&self) -> bool {
        !self.is_clustered() && tokio::runtime::Handle::try_current().is_ok()
    }

    /// Queues a call for the next combined call (starting the task that sends them if none
    /// runs); its reply, within the command timeout.
    fn coalesce(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Reply, RedisError>> + Send + 'static {
        let slot = Arc::new(Slot::default());
        let start = {
            let mut state = self.inner_coalescer().0.lock().unwrap_or_else(|p| p.into_inner());
            let reply = Sender(Some(slot.clone()));
            state.queue.push(Queued { script: *script, keys, args, reply, coalesce: false });
            !std::mem::replace(&mut state.sending, true)
        };
        if start {
            tokio::spawn(send_coalesced(self.clone()));
        }
        let timeout = self.command_timeout();
        async move {
            tokio::time::timeout(timeout, PendingReply(slot))
                .await
                .unwrap_or_else(|_| Err(RedisError::Unavailable("the command timed out".into())))
        }
    }
}

/// Marks the sending task gone however it ends: dropped with its runtime mid-batch, it leaves
/// no queue that nobody sends (the calls waiting in it are answered with an error) and lets
/// the next call start a task again.
struct Sending {
    redis: Redis,
    /// Ended with nothing queued: nothing to put right.
    done: bool,
}

impl Drop for Sending {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.redis.inner_coalescer().0.lock().unwrap_or_else(|p| p.into_inner());
        state.sending = false;
        drop(std::mem::take(&mut state.queue));
    }
}

/// Sends the queued calls, a batch at a time, until none is left.
async fn send_coalesced(redis: Redis) {
    let mut sending = Sending { redis, done: false };
    loop {
        let redis = &sending.redis;
        let mut queued = {
            let mut state = redis.inner_coalescer().0.lock().unwrap_or_else(|p| p.into_inner());
            if state.queue.is_empty() {
                state.sending = false;
                drop(state);
                sending.done = true;
                return;
            }
            std::mem::take(&mut state.queue)
        };
        // Calls of one script and arity go together (a combination per count, not per mix).
        queued.sort_by_key(|q| (q.script.id(), q.keys.len(), q.args.len()));
        let mut batches: Vec<Vec<Queued>> = Vec::new();
        for q in queued {
            match batches.last_mut() {
                Some(batch)
                    if batch.len() < MOST_COALESCED
                        && batch[0].script.id() == q.script.id()
                        && batch[0].keys.len() == q.keys.len()
                        && batch[0].args.len() == q.args.len() =>
                {
                    batch.push(q)
                }
                _ => batches.push(vec![q]),
            }
        }
        let sent = futures::future::join_all(batches.into_iter().map(|batch| fire(redis, batch))).await;
        for (senders, mut replies) in sent {
            for (n, sender) in senders.into_iter().enumerate() {
                sender.deliver(replies.take(n), Waker::noop());
            }
        }
    }
}
