//! Scripts issued together, run together: inside [`Redis::batched`], the scripts a future
//! issues in one poll (say, the session check and a rate-limit policy joined concurrently)
//! are combined into one Lua script and sent as one EVALSHA: one round trip, one script call
//! on the server. The parts keep their own KEYS and ARGV; on a cluster they are combined only
//! when every key hashes to one slot, and run separately (concurrently) otherwise.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use tokio::sync::oneshot;

use crate::{Arg, Redis, RedisError, Reply, Script};

/// Runs the parts: each part's keys and args are handed to it as its own KEYS and ARGV.
/// ARGV[1] is the number of parts, then a (key count, arg count) pair per part, then the args.
pub(crate) const COMBINER: &str = r#"
local n = tonumber(ARGV[1])
local k, a = 1, 2 + 2 * n
local out = {}
for i = 1, n do
  local kc, ac = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local keys, args = {}, {}
  for j = 1, kc do keys[j] = KEYS[k]; k = k + 1 end
  for j = 1, ac do args[j] = ARGV[a]; a = a + 1 end
  local r = PARTS[i](keys, args)
  if r == nil then r = false end
  out[i] = r
end
return out
"#;

struct Queued {
    script: Script,
    keys: Vec<String>,
    args: Vec<Arg>,
    reply: oneshot::Sender<Result<Reply, RedisError>>,
}

type Queue = Arc<Mutex<Vec<Queued>>>;

tokio::task_local! {
    static BATCH: Queue;
}

/// A queued script's reply to come.
pub(crate) type PendingReply = BoxFuture<'static, Result<Reply, RedisError>>;

/// Inside a batch, queues the script and returns its reply to come; outside, gives the
/// arguments back.
pub(crate) fn enqueue(
    script: &Script,
    keys: Vec<String>,
    args: Vec<Arg>,
) -> Result<PendingReply, (Vec<String>, Vec<Arg>)> {
    let Ok(queue) = BATCH.try_with(Arc::clone) else { return Err((keys, args)) };
    let (tx, rx) = oneshot::channel();
    queue.lock().unwrap_or_else(|p| p.into_inner()).push(Queued { script: script.clone(), keys, args, reply: tx });
    Ok(async move { rx.await.unwrap_or_else(|_| Err(RedisError::Unavailable("the batch was dropped".into()))) }.boxed())
}

fn copy(err: &RedisError) -> RedisError {
    match err {
        RedisError::Unavailable(m) => RedisError::Unavailable(m.clone()),
        RedisError::Command(m) => RedisError::Command(m.clone()),
        RedisError::Config(m) => RedisError::Config(m.clone()),
    }
}

/// Sends what was queued in one poll.
async fn fire(redis: Redis, mut queued: Vec<Queued>) {
    if queued.len() == 1 {
        let Queued { script, keys, args, reply } = queued.remove(0);
        let _ = reply.send(redis.eval_now(&script, keys, args).await);
        return;
    }
    let one_slot = !redis.is_clustered() || {
        let mut slots = queued.iter().flat_map(|q| q.keys.iter()).map(|k| fred::util::redis_keyslot(k.as_bytes()));
        let first = slots.next();
        slots.all(|s| Some(s) == first)
    };
    if !one_slot {
        let runs = queued.into_iter().map(|Queued { script, keys, args, reply }| {
            let redis = redis.clone();
            async move {
                let _ = reply.send(redis.eval_now(&script, keys, args).await);
            }
        });
        futures::future::join_all(runs).await;
        return;
    }
    let parts: Vec<Script> = queued.iter().map(|q| q.script.clone()).collect();
    let combined = redis.scripts().combined(&parts);
    let mut keys = Vec::new();
    let mut args = vec![Arg::Int(queued.len() as i64)];
    for q in &queued {
        args.push(Arg::Int(q.keys.len() as i64));
        args.push(Arg::Int(q.args.len() as i64));
    }
    let mut replies = Vec::with_capacity(queued.len());
    for q in queued {
        keys.extend(q.keys);
        args.extend(q.args);
        replies.push(q.reply);
    }
    match redis.eval_now(&combined, keys, args).await {
        Ok(reply) => {
            let mut parts = reply.into_array().into_iter();
            for tx in replies {
                let _ = tx.send(Ok(parts.next().unwrap_or(Reply::Nil)));
            }
        }
        Err(err) => {
            for tx in replies {
                let _ = tx.send(Err(copy(&err)));
            }
        }
    }
}

/// The future made by [`Redis::batched`].
struct Batched<F> {
    inner: Pin<Box<F>>,
    queue: Queue,
    redis: Redis,
    runs: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl<F: Future> Future for Batched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        loop {
            while let Poll::Ready(Some(())) = this.runs.poll_next_unpin(cx) {}
            if let Poll::Ready(out) = this.inner.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            let queued = std::mem::take(&mut *this.queue.lock().unwrap_or_else(|p| p.into_inner()));
            if queued.is_empty() {
                return Poll::Pending;
            }
            this.runs.push(fire(this.redis.clone(), queued).boxed());
        }
    }
}

impl Redis {
    /// Runs `fut`, combining the scripts it issues together (in one poll) into one EVALSHA.
    pub async fn batched<F: Future>(&self, fut: F) -> F::Output {
        let queue: Queue = Arc::default();
        let batched =
            Batched { inner: Box::pin(fut), queue: queue.clone(), redis: self.clone(), runs: FuturesUnordered::new() };
        BATCH.scope(queue, batched).await
    }
}
