//! The Lua scripts of the Redis job store. Every key of a queue carries its `{<queue>}` hash tag
//! (`q:{<queue>}:...`), so each script runs on one slot. Scripts that touch a job other than the
//! ones passed in KEYS (promoting due retries, trimming old jobs, dropping finished jobs'
//! parameters) build its key from the queue's key prefix (ARGV) inside the same hash tag, as
//! BullMQ does; on a cluster that is the same slot.
//!
//! Every state change bumps the record's `seq` and publishes the whole record (HGETALL as a
//! JSON array; the parameters live in a key of their own, so events stay small) on the job's
//! channel, atomically with the change: what SSE streams relay.
//!
//! A worker's writes are fenced by the record's `lease`, which START increments and nothing ever
//! lowers (`attempts` counts attempts and goes back down when an attempt is handed back).

/// Shared helpers, prepended to every script that needs them.
macro_rules! prelude {
    () => {
        r#"
-- The server clock in ms, as text: every number a script hands Redis as a Lua number costs
-- Redis a `%.17g` formatting (several times the work of the command it goes with), so the
-- scripts send numbers as text ('0', '1', and this; arithmetic on it converts it back).
local function now()
  local t = redis.call('TIME')
  return string.format('%s%03d', t[1], math.floor(t[2] / 1000))
end
-- Counts a change of the job (unless the caller wrote the next `seq` with the change: `counted`)
-- and publishes its record on `channel`; returns the record when `want` (or when published). A
-- channel marked '?' (one Redis node, where PUBSUB NUMSUB counts every subscriber) is published
-- only while someone listens: most jobs are never watched, and reading and encoding the whole
-- record was most of what a change cost. A watcher subscribes before it reads the record, so it
-- misses nothing.
local function publish(job, channel, want, counted)
  if not counted then redis.call('HINCRBY', job, 'seq', '1') end
  if string.byte(channel, 1) == 63 then
    channel = string.sub(channel, 2)
    if redis.call('PUBSUB', 'NUMSUB', channel)[2] == 0 then
      if want then return redis.call('HGETALL', job) end
      return nil
    end
  end
  local record = redis.call('HGETALL', job)
  redis.call('PUBLISH', channel, cjson.encode(record))
  return record
end
local function unqueue(stream, entry)
  if entry and entry ~= '' then
    redis.call('XACK', stream, 'workers', entry)
    redis.call('XDEL', stream, entry)
  end
end
-- Records a finished job in `set` and keeps at most `keep` of them (older ones are deleted
-- early); entries past the retention are dropped (their keys expired).
local function keep(set, id, t, keep_n, retention, prefix, infra_ttl)
  redis.call('ZADD', set, t, id)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', string.format('%d', t - retention))
  local excess = redis.call('ZCARD', set) - keep_n
  if excess > 0 then
    local last = string.format('%d', excess - 1)
    for _, old in ipairs(redis.call('ZRANGE', set, '0', last)) do
      redis.call('DEL', prefix .. 'job:' .. old, prefix .. 'params:' .. old)
    end
    redis.call('ZREMRANGEBYRANK', set, '0', last)
  end
  redis.call('PEXPIRE', set, infra_ttl)
end
-- Ends a job for good: its status and error, its entry acknowledged, its parameters dropped, no
-- longer one of its owner's open jobs, the record kept for the retention (or fewer, as `keep`
-- says). Returns the record as it ended when `want`. What the caller already has saves a command
-- each: `t` (the time), `owner` (the record's, `false` for none), and `progress` with `seq` (the
-- job's final progress and its next change count, written with the rest; given together).
local function finish(job, stream, set, status, err, id, prefix, retention, keep_n, infra_ttl, channel, entry, want,
    t, owner, progress, seq)
  t = t or now()
  unqueue(stream, entry)
  if owner == nil then owner = redis.call('HGET', job, 'owner') end
  if owner then redis.call('ZREM', prefix .. 'open:' .. owner, id) end
  if seq then
    redis.call('HSET', job, 'status', status, 'error', err, 'updated', t, 'finished', t, 'entry', '', 'progress',
      progress, 'seq', seq)
  else
    redis.call('HSET', job, 'status', status, 'error', err, 'updated', t, 'finished', t, 'entry', '')
  end
  redis.call('PEXPIRE', job, retention)
  redis.call('DEL', prefix .. 'params:' .. id)
  local record = publish(job, channel, want, seq ~= nil)
  keep(set, id, t, tonumber(keep_n), tonumber(retention), prefix, infra_ttl)
  return record
end
"#
    };
}

/// KEYS: job, stream, params, the owner's open jobs. ARGV: id, owner, type, params, max, infra
/// ttl, prefix, open jobs allowed (0: any number). Creates the record, queues the job (creating
/// the stream and its group when missing) and counts it among its owner's open jobs of the
/// queue; `false` when the owner has as many open already. (Members whose job ended without
/// `finish`, its record expired, are dropped when the count is reached.)
pub(crate) const ENQUEUE: &str = concat!(
    prelude!(),
    r#"
local allowed = tonumber(ARGV[8])
if allowed > 0 and redis.call('ZCARD', KEYS[4]) >= allowed then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    local status = redis.call('HGET', ARGV[7] .. 'job:' .. id, 'status')
    if status ~= 'pending' and status ~= 'active' then redis.call('ZREM', KEYS[4], id) end
  end
  if redis.call('ZCARD', KEYS[4]) >= allowed then return false end
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], 'workers', '0', 'MKSTREAM')
end
local t = now()
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'owner', ARGV[2], 'type', ARGV[3], 'max', ARGV[5],
  'status', 'pending', 'progress', '0', 'attempts', '0', 'lease', '0', 'created', t, 'updated', t, 'seq', '0',
  'cancel', '0', 'entry', entry)
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[6])
redis.call('ZADD', KEYS[4], t, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[4], ARGV[6])
return redis.call('HGETALL', KEYS[1])
"#
);

/// KEYS: owner index. ARGV: member, score, ttl, cap. The owner's newest `cap` jobs.
pub(crate) const INDEX: &str = r#"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// KEYS: owner index. ARGV: last rank. Newest first.
pub(crate) const OWNER_JOBS: &str = r#"
return redis.call('ZREVRANGE', KEYS[1], 0, ARGV[1])
"#;

/// KEYS: any number of job records of one queue. Returns each one's HGETALL.
pub(crate) const GET_MANY: &str = r#"
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"#;

/// The start of an attempt, shared by START and COMPLETE_NEXT: `start(job, stream, failed,
/// paused, params, entry, consumer, channel, retention, keep failed, id, prefix, infra ttl, now)`
/// starts an attempt of the job behind a delivered (or reclaimed) stream entry. Returns {1,
/// record, params} when started; {0} when the entry was stale (acknowledged and dropped), or the
/// job ended instead: cancelled (cancellation was requested while it ran) or failed (a reclaimed
/// job out of attempts); {3} when the queue is paused (the job goes back to the queue: a read
/// that was already waiting when the pause came must not start it). A caller that has just
/// read the pause flag and the clock passes `false` and the time instead.
macro_rules! starter {
    () => {
        r#"
local function start(job, stream, failed, paused, params, entry, consumer, channel, retention, keep_n, id, prefix,
    infra_ttl, t)
  local st = redis.call('HMGET', job, 'status', 'attempts', 'max', 'entry', 'cancel', 'lease', 'seq')
  local status, attempts, max = st[1], tonumber(st[2] or '0'), tonumber(st[3] or '1')
  -- Only the job's current entry counts: a missing record, a finished or cancelled job, or an
  -- entry that is not the job's any more is acknowledged and dropped.
  if not status or st[4] ~= entry or (status ~= 'pending' and status ~= 'active') then
    unqueue(stream, entry)
    return {0}
  end
  if st[5] == '1' then
    finish(job, stream, failed, 'cancelled', 'cancelled while running', id, prefix, retention, keep_n, infra_ttl,
      channel, entry)
    return {0}
  end
  if status == 'active' and attempts >= max then
    -- The worker running the last attempt stopped (died, or stalled past the visibility timeout).
    finish(job, stream, failed, 'failed', 'the worker running the last attempt stopped', id, prefix, retention,
      keep_n, infra_ttl, channel, entry)
    return {0}
  end
  if paused and redis.call('EXISTS', paused) == 1 then
    unqueue(stream, entry)
    redis.call('HSET', job, 'entry', redis.call('XADD', stream, '*', 'id', id))
    if status == 'active' then
      redis.call('HSET', job, 'status', 'pending', 'updated', now())
      publish(job, channel)
    end
    return {3}
  end
  t = t or now()
  -- The lease and the change count go up with the rest (read above): one command, where an
  -- `HINCRBY` each were two more.
  redis.call('HSET', job, 'status', 'active', 'attempts', string.format('%d', attempts + 1), 'started', t, 'updated', t,
    'worker', consumer, 'beat', t, 'lease', string.format('%d', tonumber(st[6] or '0') + 1),
    'seq', string.format('%d', tonumber(st[7] or '0') + 1))
  redis.call('PEXPIRE', job, infra_ttl)
  redis.call('PEXPIRE', params, infra_ttl)
  return {1, publish(job, channel, true, true), redis.call('GET', params) or ''}
end
"#
    };
}

/// KEYS: job, stream, failed, paused, params. ARGV: entry, consumer, channel, retention, keep
/// failed, id, prefix, infra ttl. `start` for one entry.
pub(crate) const START: &str = concat!(
    prelude!(),
    starter!(),
    r#"
return start(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
  ARGV[7], ARGV[8])
"#
);

/// KEYS: job, stream. ARGV: lease, consumer. Resets the entry's idle time (the visibility
/// timeout) while the lease holds. Returns {held, cancel requested}.
pub(crate) const HEARTBEAT: &str = r#"
local st = redis.call('HMGET', KEYS[1], 'status', 'lease', 'cancel', 'entry')
if st[1] ~= 'active' or st[2] ~= ARGV[1] then return {0, 0} end
redis.call('XCLAIM', KEYS[2], 'workers', ARGV[2], 0, st[4], 'JUSTID')
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'beat', tonumber(t[1]) * 1000)
return {1, tonumber(st[3])}
"#;

/// KEYS: job. ARGV: lease, progress, channel. Returns {held, cancel requested}.
pub(crate) const PROGRESS: &str = concat!(
    prelude!(),
    r#"
local st = redis.call('HMGET', KEYS[1], 'status', 'lease', 'cancel', 'progress')
if st[1] ~= 'active' or st[2] ~= ARGV[1] then return {0, 0} end
if st[4] ~= ARGV[2] then
  redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'updated', now())
  publish(KEYS[1], ARGV[3])
end
return {1, tonumber(st[3])}
"#
);

/// The body of COMPLETE: KEYS: job, stream, completed. ARGV: lease, channel, id, prefix,
/// retention, keep completed, infra ttl, the result's content type ('' for none). `done` is 1
/// when completed by this lease (now or before: a retried call), 0 when not held.
macro_rules! completer {
    () => {
        r#"
local function complete(t)
  local st = redis.call('HMGET', KEYS[1], 'status', 'lease', 'entry', 'owner', 'seq')
  if st[2] ~= ARGV[1] then return 0 end
  if st[1] == 'completed' then return 1 end
  if st[1] ~= 'active' then return 0 end
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'rtype', ARGV[8]) end
  finish(KEYS[1], KEYS[2], KEYS[3], 'completed', '', ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[2], st[3], false,
    t, st[4], '100', string.format('%d', tonumber(st[5] or '0') + 1))
  return 1
end
"#
    };
}

/// Completes an attempt (see `completer`). Returns 1 or 0.
pub(crate) const COMPLETE: &str = concat!(prelude!(), completer!(), "return complete()\n");

/// COMPLETE, then the worker's next job in the same call, as BullMQ's `moveToFinished` does:
/// one round trip per job while the queue has work, where fetching apart costs two more.
/// KEYS and ARGV as COMPLETE, then KEYS: failed, paused; ARGV: consumer, keep failed, the
/// events channel's prefix. Reads new entries for `consumer` (a few stale ones are dropped on
/// the way) and starts the first that can start. Returns {done} when nothing was started,
/// {done, record, params} when the next attempt was.
pub(crate) const COMPLETE_NEXT: &str = concat!(
    prelude!(),
    starter!(),
    completer!(),
    r#"
-- One clock read for the completion and the next start.
local t = now()
local done = complete(t)
if redis.call('EXISTS', KEYS[5]) == 1 then return {done} end
for _ = 1, 8 do
  local read = redis.call('XREADGROUP', 'GROUP', 'workers', ARGV[9], 'COUNT', '1', 'STREAMS', KEYS[2], '>')
  if not read then return {done} end
  local e = read[1][2][1]
  local fields, id = e[2] or {}, nil
  for i = 1, #fields, 2 do if fields[i] == 'id' then id = fields[i + 1] end end
  if not id then
    unqueue(KEYS[2], e[1])
  else
    local r = start(ARGV[4] .. 'job:' .. id, KEYS[2], KEYS[4], false, ARGV[4] .. 'params:' .. id, e[1], ARGV[9],
      ARGV[11] .. id, ARGV[5], ARGV[10], id, ARGV[4], ARGV[7], t)
    if r[1] == 1 then return {done, r[2], r[3]} end
  end
end
return {done}
"#
);

/// KEYS: job, stream, delayed, failed. ARGV: lease, channel, id, prefix, retention, keep failed,
/// infra ttl, error, retry in ms ('' for none), final status ('failed' or 'cancelled').
/// Returns 1 when applied, 0 when not held. A job whose cancellation was requested is not
/// retried: it ends cancelled.
pub(crate) const FAIL: &str = concat!(
    prelude!(),
    r#"
local st = redis.call('HMGET', KEYS[1], 'status', 'lease', 'entry', 'cancel')
if st[1] ~= 'active' or st[2] ~= ARGV[1] then return 0 end
if ARGV[9] ~= '' and st[4] ~= '1' then
  local t = now()
  unqueue(KEYS[2], st[3])
  redis.call('HSET', KEYS[1], 'status', 'pending', 'error', ARGV[8], 'updated', t, 'entry', '')
  redis.call('ZADD', KEYS[3], t + tonumber(ARGV[9]), ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
  publish(KEYS[1], ARGV[2])
  return 1
end
local status = ARGV[10]
if st[4] == '1' then status = 'cancelled' end
finish(KEYS[1], KEYS[2], KEYS[4], status, ARGV[8], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[2], st[3])
return 1
"#
);

/// KEYS: job, stream, failed. ARGV: lease, channel, id, prefix, retention, keep failed, infra
/// ttl. Hands an attempt back: the job is queued again at once and the attempt does not count
/// (a job whose cancellation was requested ends cancelled instead).
pub(crate) const RELEASE: &str = concat!(
    prelude!(),
    r#"
local st = redis.call('HMGET', KEYS[1], 'status', 'lease', 'entry', 'attempts', 'cancel')
if st[1] ~= 'active' or st[2] ~= ARGV[1] then return 0 end
if st[5] == '1' then
  finish(KEYS[1], KEYS[2], KEYS[3], 'cancelled', 'cancelled while running', ARGV[3], ARGV[4], ARGV[5], ARGV[6],
    ARGV[7], ARGV[2], st[3])
  return 1
end
unqueue(KEYS[2], st[3])
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'pending', 'attempts', tonumber(st[4]) - 1, 'entry', entry, 'updated', now())
redis.call('PEXPIRE', KEYS[2], ARGV[7])
publish(KEYS[1], ARGV[2])
return 1
"#
);

/// KEYS: job, stream, delayed, failed. ARGV: channel, id, prefix, retention, keep failed, infra
/// ttl. Returns {0} not found, {1, record} cancelled, {2, record} requested, {3, record} finished.
pub(crate) const CANCEL: &str = concat!(
    prelude!(),
    r#"
local st = redis.call('HMGET', KEYS[1], 'status', 'entry')
if not st[1] then return {0} end
if st[1] == 'pending' then
  redis.call('ZREM', KEYS[3], ARGV[2])
  -- The record as it ended, taken before `keep` may delete it (keep_failed = 0).
  return {1, finish(KEYS[1], KEYS[2], KEYS[4], 'cancelled', '', ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
    ARGV[1], st[2], true)}
end
if st[1] == 'active' then
  redis.call('HSET', KEYS[1], 'cancel', 1)
  return {2, redis.call('HGETALL', KEYS[1])}
end
return {3, redis.call('HGETALL', KEYS[1])}
"#
);

/// KEYS: delayed, stream. ARGV: prefix, infra ttl. Queues the retries that are due.
pub(crate) const PROMOTE: &str = concat!(
    prelude!(),
    r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now(), 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  local job = ARGV[1] .. 'job:' .. id
  if redis.call('HGET', job, 'status') == 'pending' then
    if redis.call('EXISTS', KEYS[2]) == 0 then
      redis.call('XGROUP', 'CREATE', KEYS[2], 'workers', '0', 'MKSTREAM')
    end
    redis.call('HSET', job, 'entry', redis.call('XADD', KEYS[2], '*', 'id', id))
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  redis.call('ZREM', KEYS[1], id)
end
return #due
"#
);

/// KEYS: stream, paused. ARGV: consumer, min idle ms, count, cursor. Claims entries idle that
/// long (their worker stopped heartbeating) for `consumer`, scanning the pending list from
/// `cursor`; returns {next cursor, entry, job id, ...}. Entries without a job id, and entries
/// deleted from the stream but still pending, are acknowledged. Nothing is claimed while the
/// queue is paused.
pub(crate) const CLAIM: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then return {'0-0'} end
local ok, r = pcall(redis.call, 'XAUTOCLAIM', KEYS[1], 'workers', ARGV[1], ARGV[2], ARGV[4], 'COUNT', tonumber(ARGV[3]))
if not ok then return {'0-0'} end
local out = {r[1]}
for _, e in ipairs(r[2]) do
  if e and e[2] then
    local id = nil
    for i = 1, #e[2], 2 do if e[2][i] == 'id' then id = e[2][i + 1] end end
    if id then out[#out + 1] = e[1]; out[#out + 1] = id
    else redis.call('XACK', KEYS[1], 'workers', e[1]); redis.call('XDEL', KEYS[1], e[1]) end
  end
end
if r[3] then for _, gone in ipairs(r[3]) do redis.call('XACK', KEYS[1], 'workers', gone) end end
return out
"#;

/// KEYS: stream. ARGV: entry. Acknowledges and drops an entry that carries no job.
pub(crate) const DROP_ENTRY: &str = r#"
redis.call('XACK', KEYS[1], 'workers', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"#;

/// KEYS: stream. ARGV: consumer. Removes the consumer from the group when it holds no entries
/// (a stopping worker), so the group's consumer list does not grow with every restart.
pub(crate) const FORGET_CONSUMER: &str = r#"
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], 'workers', '-', '+', 1, ARGV[1])
if ok and #p == 0 then pcall(redis.call, 'XGROUP', 'DELCONSUMER', KEYS[1], 'workers', ARGV[1]) end
return 1
"#;

/// KEYS: stream, delayed, completed, failed, paused.
pub(crate) const STATS: &str = r#"
local len = redis.call('XLEN', KEYS[1])
local active = 0
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], 'workers')
if ok and p then active = p[1] end
return {len - active, active, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), redis.call('EXISTS', KEYS[5])}
"#;

/// KEYS: stream. ARGV: infra ttl. Creates the consumer group (and the stream) when missing.
pub(crate) const ENSURE_GROUP: &str = r#"
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], 'workers', '0', 'MKSTREAM')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#;

/// KEYS: rate counter. ARGV: max, per ms. Returns 0 when a job may start, else ms to wait.
pub(crate) const TAKE_RATE: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  local left = redis.call('PTTL', KEYS[1])
  if left < 1 then left = 1 end
  return left
end
return 0
"#;

/// KEYS: rate counter.
pub(crate) const REFUND_RATE: &str = r#"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 1
"#;

/// KEYS: ticket. Returns its value and deletes it.
/// KEYS: ticket. ARGV: reconnect (1/0), keep ms. A used ticket's value starts with `u|`.
pub(crate) const USE_TICKET: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return false end
if string.sub(v, 1, 2) == 'u|' then
  if ARGV[1] == '1' then return string.sub(v, 3) end
  return false
end
redis.call('SET', KEYS[1], 'u|' .. v, 'PX', ARGV[2])
return v
"#;
