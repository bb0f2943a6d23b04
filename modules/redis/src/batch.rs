//! Scripts issued together, run together: inside [`Redis::batched`], the scripts a future
//! issues in one poll (say, the session check and a rate-limit policy joined concurrently)
//! are combined into one Lua script and sent as one EVALSHA: one round trip, one script call
//! and one `TIME` on the server. The parts keep their own KEYS and ARGV (the combined script
//! is generated per set of parts and arities, so each part reads its slices at fixed offsets,
//! with no bookkeeping arguments); on a cluster they are combined only when every key hashes
//! to one slot, and run separately (concurrently) otherwise. A part that is a script of several
//! values (`Redis::register_generated_values_script`) puts them in the combined reply as they
//! are, and its caller gets them back as the array the script answers alone.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::Instant,
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

/// A script call waiting to be sent.
struct Call {
    script: Script,
    keys: Vec<String>,
    args: Vec<Arg>,
    /// Called with [`Redis::eval_coalesced`]: alone in its request's batch, it goes with other
    /// requests' calls.
    coalesce: bool,
}

/// A call and where its reply goes.
struct Queued {
    call: Call,
    reply: Sender,
}

/// Calls and their replies' senders, apart: the calls go to [`fire`], the senders stay with
/// whoever delivers (so a batch cut short by its deadline still answers every caller).
fn split(queued: Vec<Queued>) -> (Vec<Call>, Vec<Sender>) {
    queued.into_iter().map(|Queued { call, reply }| (call, reply)).unzip()
}

/// The calls a batch's future issued in its current poll. Made current by reference for each
/// poll of the future ([`scoped_tls`]), not a task-local that moves a shared, locked queue into
/// the thread's slot and back on every poll.
type Queue = RefCell<Vec<Queued>>;

scoped_tls::scoped_thread_local!(static BATCH: Queue);

/// Inside a batch, queues the script and returns its reply to come; outside, gives the
/// arguments back.
pub(crate) fn enqueue(
    script: &Script,
    keys: Vec<String>,
    args: Vec<Arg>,
    coalesce: bool,
) -> Result<PendingReply, (Vec<String>, Vec<Arg>)> {
    if !BATCH.is_set() {
        return Err((keys, args));
    }
    let slot = Arc::new(Slot::default());
    let reply = Sender(Some(slot.clone()));
    let call = Call { script: *script, keys, args, coalesce };
    BATCH.with(|queue| queue.borrow_mut().push(Queued { call, reply }));
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

/// Hands each sender its reply.
fn deliver((senders, mut replies): Deliveries, delivering: &Waker) {
    for (n, sender) in senders.into_iter().enumerate() {
        sender.deliver(replies.take(n), delivering);
    }
}

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
fn combined(redis: &Redis, queued: &[Call]) -> Script {
    let key = || queued.iter().map(|q| (q.script.id(), q.keys.len(), q.args.len()));
    let known = COMBINED.with_borrow(|seen| seen.iter().find(|(k, _)| k.iter().copied().eq(key())).map(|(_, s)| *s));
    known.unwrap_or_else(|| {
        let script = redis.scripts().combined(queued.iter().map(|q| (&q.script, q.keys.len(), q.args.len())));
        COMBINED.with_borrow_mut(|seen| seen.push((key().collect(), script)));
        script
    })
}

/// Sends calls queued together (one combined script where their keys allow); their replies,
/// one per call and in order.
async fn fire(redis: &Redis, mut calls: Vec<Call>) -> Replies {
    if calls.len() == 1 {
        // (A call to coalesce never comes here alone where calls are coalesced.)
        let Call { script, keys, args, .. } = calls.remove(0);
        return Replies::Each(vec![redis.eval_now(&script, keys, args).await]);
    }
    let one_slot = !redis.is_clustered() || {
        let mut slots = calls.iter().flat_map(|q| q.keys.iter()).map(|k| fred::util::redis_keyslot(k.as_bytes()));
        let first = slots.next();
        slots.all(|s| Some(s) == first)
    };
    if !one_slot {
        let runs = calls
            .into_iter()
            .map(|Call { script, keys, args, .. }| async move { redis.eval_now(&script, keys, args).await });
        return Replies::Each(futures::future::join_all(runs).await);
    }
    let combined = combined(redis, &calls);
    let mut keys = Vec::with_capacity(calls.iter().map(|q| q.keys.len()).sum());
    let mut args = Vec::with_capacity(calls.iter().map(|q| q.args.len()).sum());
    let mut values = Vec::with_capacity(calls.len());
    for q in calls {
        keys.extend(q.keys);
        args.extend(q.args);
        values.push(q.script.values());
    }
    match redis.eval_now(&combined, keys, args).await {
        Ok(reply) => Replies::Parts(regroup(reply.into_array(), &values)),
        Err(err) => Replies::Failed(err),
    }
}

/// A combined script's reply (every part's values, one after the other) as one reply per part:
/// a part of several values gets them as an array, as it would running alone.
fn regroup(flat: Vec<Reply>, values: &[usize]) -> Vec<Reply> {
    if values.iter().all(|v| *v == 1) {
        return flat;
    }
    let mut flat = flat.into_iter();
    values
        .iter()
        .map(|&n| match n {
            1 => flat.next().unwrap_or(Reply::Nil),
            n => Reply::Array((0..n).map(|_| flat.next().unwrap_or(Reply::Nil)).collect()),
        })
        .collect()
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
                    Poll::Ready(deliveries) => {
                        drop(this.runs.swap_remove(i));
                        deliver(deliveries, cx.waker());
                        poll_inner = true;
                    }
                    Poll::Pending => i += 1,
                }
            }
            if !poll_inner {
                return Poll::Pending;
            }
            poll_inner = false;
            let inner = &mut this.inner;
            if let Poll::Ready(out) = BATCH.set(&this.queue, || inner.as_mut().poll(cx)) {
                return Poll::Ready(out);
            }
            let mut queued = this.queue.take();
            if queued.is_empty() {
                return Poll::Pending;
            }
            if let [one] = &queued[..]
                && one.call.coalesce
                && this.redis.coalesces()
            {
                // Alone in its request's batch, the call joins other requests' calls, and its
                // reply reaches the request straight from there: no run here to box and poll
                // (the run's future, sized for every way a batch is sent, was the largest copy
                // a request made).
                this.redis.join_coalesced(queued.remove(0));
                continue;
            }
            let (calls, senders) = split(queued);
            this.runs.push(fire(this.redis, calls).map(|replies| (senders, replies)).boxed());
        }
    }
}

impl Redis {
    /// Runs `fut`, combining the scripts it issues together (in one poll) into one EVALSHA.
    pub async fn batched<F: Future>(&self, fut: F) -> F::Output {
        let inner = std::pin::pin!(fut);
        Batched { inner, queue: Queue::default(), redis: self, runs: Vec::new() }.await
    }
}

/// Calls from different requests, run together: while one combined call is in flight, the
/// calls that arrive queue up and go together in the next, as a database's group commit does.
/// Redis's cost of a call is mostly the system calls of reading it and writing its answer
/// (several microseconds on these machines, where the script itself costs about four), and
/// fred writes every EVALSHA on its own; a combined call of N requests pays them once. Idle,
/// a call goes out at once: the first call of a burst spawns the task that sends the batches
/// and that task ends when the queue is empty. Each of the server's event loops has its own
/// (see [`crate::lane`]), so a combined call and the requests it answers stay on one thread;
/// off the loops, one is shared.
#[derive(Default)]
pub(crate) struct Coalescer(Mutex<CoalescerState>);

#[derive(Default)]
struct CoalescerState {
    queue: Vec<Waiting>,
    /// Whether a task is sending the queue's batches.
    sending: bool,
}

/// A coalesced call, and when its caller stops waiting for it.
struct Waiting {
    queued: Queued,
    deadline: Instant,
}

/// The most calls of one script combined into one call: each count is a script of its own
/// on the server (the parts are unrolled), so this bounds how many are generated. At 64
/// connections a cap of 16 was reached by most calls (about 12 requests per call); with 32,
/// about 17 go together, and Redis and the app each spend about a microsecond less per request.
pub(crate) const MOST_COALESCED: usize = 32;

impl Redis {
    /// Runs a script as [`eval`](Self::eval) does, combined with the same script's concurrent
    /// calls from other requests of the same event loop into one EVALSHA (see [`Coalescer`]).
    /// Each call still runs atomically (calls in flight together have no order among them). For
    /// scripts of hot, independent, single-slot calls; on a cluster (where different keys mostly
    /// mean different slots) it is `eval`. A call waits at most the command timeout, the wait
    /// for the batch ahead of it included.
    pub fn eval_coalesced(&self, script: &Script, keys: Vec<String>, args: Vec<Arg>) -> Eval<'_> {
        if !self.coalesces() {
            return self.eval(script, keys, args);
        }
        // In a request's batch it travels with that request's other scripts; alone there, it
        // joins other requests' calls when the batch is sent.
        match enqueue(script, keys, args, true) {
            Ok(reply) => Eval::queued(reply),
            Err((keys, args)) => Eval::queued(self.coalesce(script, keys, args)),
        }
    }

    /// Whether calls are coalesced here: not on a cluster, and only inside a runtime.
    fn coalesces(&self) -> bool {
        !self.is_clustered() && tokio::runtime::Handle::try_current().is_ok()
    }

    /// Queues a call for the next combined call (starting the task that
    /// sends them if none runs); its reply, within the command timeout. The deadline is kept
    /// by the sending task, one timer per combined call rather than one per call.
    fn coalesce(&self, script: &Script, keys: Vec<String>, args: Vec<Arg>) -> PendingReply {
        let slot = Arc::new(Slot::default());
        let call = Call { script: *script, keys, args, coalesce: false };
        self.join_coalesced(Queued { call, reply: Sender(Some(slot.clone())) });
        PendingReply(slot)
    }

    /// Queues a call, whose reply goes to its sender, for the next combined call (starting the
    /// task that sends them if none runs).
    fn join_coalesced(&self, queued: Queued) {
        let coalescer = self.coalescer();
        let start = {
            let mut state = coalescer.0.lock().unwrap_or_else(|p| p.into_inner());
            state.queue.push(Waiting { queued, deadline: Instant::now() + self.command_timeout() });
            !std::mem::replace(&mut state.sending, true)
        };
        if start {
            tokio::spawn(send_coalesced(self.clone(), coalescer));
        }
    }
}

/// Marks the sending task gone however it ends: dropped with its runtime mid-batch, it leaves
/// no queue that nobody sends (the calls waiting in it are answered with an error) and lets
/// the next call start a task again.
struct Sending {
    redis: Redis,
    coalescer: Arc<Coalescer>,
    /// Ended with nothing queued: nothing to put right.
    done: bool,
}

impl Sending {
    fn state(&self) -> std::sync::MutexGuard<'_, CoalescerState> {
        self.coalescer.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.state();
        state.sending = false;
        drop(std::mem::take(&mut state.queue));
    }
}

/// The error of a call whose caller's wait ended first.
fn timed_out() -> RedisError {
    RedisError::Unavailable("the command timed out".into())
}

/// Sends the queued calls, a batch at a time, until none is left.
async fn send_coalesced(redis: Redis, coalescer: Arc<Coalescer>) {
    let mut sending = Sending { redis, coalescer, done: false };
    loop {
        let mut queued = {
            let mut state = sending.state();
            if state.queue.is_empty() {
                state.sending = false;
                drop(state);
                sending.done = true;
                return;
            }
            std::mem::take(&mut state.queue)
        };
        let redis = &sending.redis;
        // A call whose caller stopped waiting (the batch ahead took the whole timeout) is
        // answered so, not sent.
        let now = Instant::now();
        queued.retain_mut(|w| {
            if w.deadline > now {
                return true;
            }
            let reply = std::mem::replace(&mut w.queued.reply, Sender(None));
            reply.deliver(Err(timed_out()), Waker::noop());
            false
        });
        // Calls of one script and arity go together (a combination per count, not per mix).
        queued.sort_by_key(|w| (w.queued.call.script.id(), w.queued.call.keys.len(), w.queued.call.args.len()));
        let mut batches: Vec<Vec<Waiting>> = Vec::new();
        for w in queued {
            match batches.last_mut() {
                Some(batch)
                    if batch.len() < MOST_COALESCED && {
                        let (a, b) = (&batch[0].queued.call, &w.queued.call);
                        a.script.id() == b.script.id() && a.keys.len() == b.keys.len() && a.args.len() == b.args.len()
                    } =>
                {
                    batch.push(w)
                }
                _ => batches.push(vec![w]),
            }
        }
        let runs = batches.into_iter().map(|batch| {
            let deadline = batch.iter().map(|w| w.deadline).min().unwrap_or(now);
            let (calls, senders) = split(batch.into_iter().map(|w| w.queued).collect());
            async move {
                let replies = tokio::time::timeout_at(deadline.into(), fire(redis, calls))
                    .await
                    .unwrap_or_else(|_| Replies::Failed(timed_out()));
                (senders, replies)
            }
        });
        for deliveries in futures::future::join_all(runs).await {
            deliver(deliveries, Waker::noop());
        }
    }
}
