//! The Redis adapter: each operation is one Lua script (one round trip, atomic).

use app_redis::{Arg, Redis, RedisError, Reply, Script};
use async_trait::async_trait;
use uuid::Uuid;

use super::{NewSession, Rotation, SessionPolicy, SessionStore, StoredSession};

/// Prepends `now_ms()`, the store's clock (Redis `TIME`, so instance clocks do not matter), and
/// `bump_version(key, ttl)`, which moves the user's version on (`app_core::versions`: every
/// change that ends a session early does, so every instance's in-process copies of the user's
/// sessions go).
macro_rules! with_clock {
    ($body:literal) => {
        concat!("local function now_ms() return math.floor(server_ms()) end\n", app_redis::bump_version_lua!(), $body)
    };
}

/// KEYS: session, rotated list, index, the user's version. ARGV: sid, blob, refresh hash, idle
/// ms, absolute ms, max sessions, the user's key base. Returns {created, expires}. Evicting the
/// oldest sessions moves the version on.
const CREATE: &str = with_clock!(
    r#"
local now = now_ms()
local idle, abs = tonumber(ARGV[4]), now + tonumber(ARGV[5])
local ttl = math.min(idle, abs - now)
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'rt', ARGV[3], 'c', now, 's', now, 'a', abs, 'i', idle)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if redis.call('EXISTS', ARGV[7] .. sid) == 0 then redis.call('ZREM', KEYS[3], sid) end
end
redis.call('ZADD', KEYS[3], abs, ARGV[1])
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[6])
if over > 0 then
  -- The oldest others go; never the session being created.
  local evicted = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, over)) do
    if sid ~= ARGV[1] and #evicted < over then table.insert(evicted, sid) end
  end
  for _, sid in ipairs(evicted) do redis.call('DEL', ARGV[7] .. sid, ARGV[7] .. sid .. ':old') end
  redis.call('ZREM', KEYS[3], unpack(evicted))
  bump_version(KEYS[4], ARGV[5])
end
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[3], math.max(1, tonumber(last[2]) - now))
return {now, now + ttl}
"#
);

/// KEYS: session, the user's version. ARGV: absolute ms (the version's TTL when it is made).
/// Returns {blob, created, last seen, expires, version} or nil (the version is made when
/// missing, from the clock, so it is above every value it had). The session's idle deadline
/// moves with use, but a session used many times a second is written at most every
/// `min(1 s, idle / 4)`: most session checks cost a read only, and an instance that checked a
/// session keeps it in process that long while the user's version stays (see the service).
const TOUCH: &str = with_clock!(
    r#"
local v = redis.call('HMGET', KEYS[1], 'd', 'c', 'a', 'i', 's')
if not v[1] then return false end
local now, abs, idle, seen = now_ms(), tonumber(v[3]), tonumber(v[4]), tonumber(v[5])
if now >= abs then redis.call('DEL', KEYS[1], KEYS[1] .. ':old') return false end
local version = redis.call('GET', KEYS[2])
if not version then
  version = string.format('%d', math.floor(server_ms() * 1000))
  redis.call('SET', KEYS[2], version, 'PX', ARGV[1])
end
if now - seen < math.min(1000, idle / 4) then
  return {v[1], tonumber(v[2]), seen, math.min(seen + idle, abs), version}
end
redis.call('HSET', KEYS[1], 's', now)
redis.call('PEXPIRE', KEYS[1], math.min(idle, abs - now))
return {v[1], tonumber(v[2]), now, math.min(now + idle, abs), version}
"#
);

/// KEYS: session, rotated list, index, the user's version. ARGV: presented hash, next hash,
/// grace ms, kept, sid, absolute ms. Ending the session (reuse) moves the version on.
const ROTATE: &str = with_clock!(
    r#"
local v = redis.call('HMGET', KEYS[1], 'd', 'rt', 'pv', 'pa', 'c', 'a', 'i')
if not v[1] then return {'missing'} end
local now, abs = now_ms(), tonumber(v[6])
if now >= abs then
  redis.call('DEL', KEYS[1], KEYS[2]); redis.call('ZREM', KEYS[3], ARGV[5])
  return {'missing'}
end
if v[2] == ARGV[1] then
  local ttl = math.min(tonumber(v[7]), abs - now)
  redis.call('HSET', KEYS[1], 'rt', ARGV[2], 'pv', ARGV[1], 'pa', now, 's', now)
  redis.call('LPUSH', KEYS[2], ARGV[1])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
  redis.call('PEXPIRE', KEYS[1], ttl)
  -- The rotated hashes live until the absolute deadline: no later touch needs to extend them.
  redis.call('PEXPIRE', KEYS[2], abs - now)
  return {'rotated', v[1], tonumber(v[5]), now, now + ttl}
end
if v[3] == ARGV[1] and now - tonumber(v[4]) < tonumber(ARGV[3]) then
  if v[2] ~= ARGV[2] then return {'concurrent'} end
  local ttl = math.min(tonumber(v[7]), abs - now)
  redis.call('HSET', KEYS[1], 's', now)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {'repeated', v[1], tonumber(v[5]), now, now + ttl}
end
if redis.call('LPOS', KEYS[2], ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2]); redis.call('ZREM', KEYS[3], ARGV[5])
  bump_version(KEYS[4], ARGV[6])
  return {'reused'}
end
return {'mismatch'}
"#
);

/// KEYS: index. ARGV: the user's key base. Returns {{sid, blob, created, seen, expires}, ..}.
const LIST: &str = with_clock!(
    r#"
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. sid
  local v = redis.call('HMGET', key, 'd', 'c', 's')
  local ttl = redis.call('PTTL', key)
  if v[1] and ttl > 0 then
    table.insert(out, {sid, v[1], tonumber(v[2]), tonumber(v[3]), now + ttl})
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
return out
"#
);

/// KEYS: session, rotated list, index, the user's version. ARGV: sid, absolute ms. Returns 1
/// when the session was live. Moves the version on, so every instance's copy of the session goes.
const REVOKE: &str = with_clock!(
    r#"
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
bump_version(KEYS[4], ARGV[2])
return n
"#
);

/// KEYS: index, the user's version. ARGV: the user's key base, absolute ms. Returns how many
/// sessions were live. Moves the version on.
const REVOKE_ALL: &str = with_clock!(
    r#"
local n = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. sid)
  redis.call('DEL', ARGV[1] .. sid .. ':old')
end
redis.call('DEL', KEYS[1])
bump_version(KEYS[2], ARGV[2])
return n
"#
);

struct Scripts {
    create: Script,
    touch: Script,
    rotate: Script,
    list: Script,
    revoke: Script,
    revoke_all: Script,
}

/// Sessions in Redis, shared by every instance.
pub struct RedisSessionStore {
    redis: Redis,
    policy: SessionPolicy,
    scripts: Scripts,
}

impl RedisSessionStore {
    /// A store on `redis` enforcing `policy`.
    pub fn new(redis: Redis, policy: SessionPolicy) -> Self {
        let scripts = Scripts {
            create: redis.register_script("session_create", CREATE),
            touch: redis.register_script("session_touch", TOUCH),
            rotate: redis.register_script("session_rotate", ROTATE),
            list: redis.register_script("session_list", LIST),
            revoke: redis.register_script("session_revoke", REVOKE),
            revoke_all: redis.register_script("session_revoke_all", REVOKE_ALL),
        };
        Self { redis, policy, scripts }
    }

    /// `<prefix>sess:{u:<uid>}:`: every key of one user shares this hash tag.
    pub fn user_base(&self, user: Uuid) -> String {
        self.redis.key(&format!("sess:{{u:{user}}}:"))
    }

    fn keys(&self, user: Uuid, sid: &str) -> (String, String, String) {
        let base = self.user_base(user);
        (format!("{base}{sid}"), format!("{base}{sid}:old"), format!("{base}index"))
    }

    fn abs_ms(&self) -> Arg {
        Arg::Int(ms(self.policy.absolute))
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn corrupt(what: &str) -> RedisError {
    RedisError::Command(format!("unexpected reply from a session script: {what}"))
}

fn int(reply: Option<&Reply>) -> Result<i64, RedisError> {
    reply.and_then(Reply::as_i64).ok_or_else(|| corrupt("not an integer"))
}

fn bytes(reply: Option<Reply>) -> Result<Vec<u8>, RedisError> {
    match reply {
        Some(Reply::Bytes(b)) => Ok(b),
        _ => Err(corrupt("not a blob")),
    }
}

/// `{blob, created, seen, expires}` from `items` starting at the blob.
fn stored(session_id: &str, mut items: std::vec::IntoIter<Reply>) -> Result<StoredSession, RedisError> {
    let blob = bytes(items.next())?;
    let rest: Vec<Reply> = items.collect();
    Ok(StoredSession {
        session_id: session_id.to_owned(),
        blob,
        created_at_ms: int(rest.first())?,
        last_seen_ms: int(rest.get(1))?,
        expires_at_ms: int(rest.get(2))?,
        version: None,
    })
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, s: NewSession) -> Result<StoredSession, RedisError> {
        let (key, old, index) = self.keys(s.user_id, &s.session_id);
        let args = vec![
            Arg::from(s.session_id.as_str()),
            Arg::Bytes(s.blob.clone()),
            Arg::from(s.refresh_hash),
            Arg::Int(ms(self.policy.idle)),
            Arg::Int(ms(self.policy.absolute)),
            Arg::Int(i64::from(self.policy.max_per_user)),
            Arg::from(self.user_base(s.user_id)),
        ];
        let version = self.redis.user_version_key(&s.user_id);
        let reply = self.redis.eval(&self.scripts.create, vec![key, old, index, version], args).await?.into_array();
        let (created, expires) = (int(reply.first())?, int(reply.get(1))?);
        Ok(StoredSession {
            session_id: s.session_id,
            blob: s.blob,
            created_at_ms: created,
            last_seen_ms: created,
            expires_at_ms: expires,
            version: None,
        })
    }

    async fn touch(&self, user: Uuid, session_id: &str) -> Result<Option<StoredSession>, RedisError> {
        let (key, _, _) = self.keys(user, session_id);
        let keys = vec![key, self.redis.user_version_key(&user)];
        match self.redis.eval(&self.scripts.touch, keys, vec![self.abs_ms()]).await? {
            Reply::Nil => Ok(None),
            reply => {
                let mut items = reply.into_array().into_iter();
                let blob = bytes(items.next())?;
                let rest: Vec<Reply> = items.collect();
                Ok(Some(StoredSession {
                    session_id: session_id.to_owned(),
                    blob,
                    created_at_ms: int(rest.first())?,
                    last_seen_ms: int(rest.get(1))?,
                    expires_at_ms: int(rest.get(2))?,
                    version: Some(int(rest.get(3))?),
                }))
            }
        }
    }

    async fn rotate(&self, user: Uuid, session_id: &str, presented: &str, next: &str) -> Result<Rotation, RedisError> {
        let (key, old, index) = self.keys(user, session_id);
        let args = vec![
            Arg::from(presented),
            Arg::from(next),
            Arg::Int(ms(self.policy.race_grace)),
            Arg::Int(i64::from(self.policy.rotated_kept)),
            Arg::from(session_id),
            self.abs_ms(),
        ];
        let keys = vec![key, old, index, self.redis.user_version_key(&user)];
        let mut items = self.redis.eval(&self.scripts.rotate, keys, args).await?.into_array().into_iter();
        let outcome = items.next();
        Ok(match outcome.as_ref().and_then(Reply::as_str) {
            Some("rotated") => Rotation::Rotated(stored(session_id, items)?),
            Some("repeated") => Rotation::Repeated(stored(session_id, items)?),
            Some("concurrent") => Rotation::Concurrent,
            Some("reused") => Rotation::Reused,
            Some("mismatch") => Rotation::Mismatch,
            Some("missing") => Rotation::Missing,
            _ => return Err(corrupt("unknown rotation outcome")),
        })
    }

    async fn list(&self, user: Uuid) -> Result<Vec<StoredSession>, RedisError> {
        let index = format!("{}index", self.user_base(user));
        let reply = self.redis.eval(&self.scripts.list, vec![index], vec![Arg::from(self.user_base(user))]).await?;
        reply
            .into_array()
            .into_iter()
            .map(|entry| {
                let mut items = entry.into_array().into_iter();
                let sid = items.next().and_then(|r| r.as_str().map(str::to_owned)).ok_or_else(|| corrupt("no id"))?;
                stored(&sid, items)
            })
            .collect()
    }

    async fn revoke(&self, user: Uuid, session_id: &str) -> Result<bool, RedisError> {
        let (key, old, index) = self.keys(user, session_id);
        let keys = vec![key, old, index, self.redis.user_version_key(&user)];
        let reply = self.redis.eval(&self.scripts.revoke, keys, vec![Arg::from(session_id), self.abs_ms()]).await?;
        Ok(int(Some(&reply))? > 0)
    }

    async fn revoke_all(&self, user: Uuid) -> Result<u64, RedisError> {
        let index = format!("{}index", self.user_base(user));
        let keys = vec![index, self.redis.user_version_key(&user)];
        let args = vec![Arg::from(self.user_base(user)), self.abs_ms()];
        let reply = self.redis.eval(&self.scripts.revoke_all, keys, args).await?;
        Ok(u64::try_from(int(Some(&reply))?).unwrap_or(0))
    }
}
