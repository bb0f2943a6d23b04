//! The memory adapter: the same semantics in process, for a single instance.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use app_redis::RedisError;
use async_trait::async_trait;
use uuid::Uuid;

use super::{NewSession, Rotation, SessionPolicy, SessionStore, StoredSession};

struct Entry {
    blob: Vec<u8>,
    refresh: String,
    previous: Option<(String, i64)>,
    rotated: VecDeque<String>,
    created: i64,
    seen: i64,
    absolute: i64,
    /// The idle deadline: the earlier of last use + idle and the absolute deadline.
    expires: i64,
}

impl Entry {
    fn live(&self, now: i64) -> bool {
        now < self.expires
    }

    fn stored(&self, sid: &str) -> StoredSession {
        StoredSession {
            session_id: sid.to_owned(),
            blob: self.blob.clone(),
            created_at_ms: self.created,
            last_seen_ms: self.seen,
            expires_at_ms: self.expires,
            version: None,
        }
    }
}

/// Sessions in this process (lost on restart, not shared between instances).
pub struct MemorySessionStore {
    policy: SessionPolicy,
    users: Mutex<HashMap<Uuid, HashMap<String, Entry>>>,
    writes: AtomicU64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl MemorySessionStore {
    /// An empty store enforcing `policy`.
    pub fn new(policy: SessionPolicy) -> Self {
        Self { policy, users: Mutex::default(), writes: AtomicU64::new(0) }
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, HashMap<String, Entry>>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn idle_deadline(&self, now: i64, absolute: i64) -> i64 {
        now.saturating_add(ms(self.policy.idle)).min(absolute)
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, s: NewSession) -> Result<StoredSession, RedisError> {
        let now = now_ms();
        let absolute = now.saturating_add(ms(self.policy.absolute));
        let entry = Entry {
            blob: s.blob,
            refresh: s.refresh_hash,
            previous: None,
            rotated: VecDeque::new(),
            created: now,
            seen: now,
            absolute,
            expires: self.idle_deadline(now, absolute),
        };
        let stored = entry.stored(&s.session_id);
        let mut users = self.users();
        // Expired sessions of everyone are swept now and then, so the map cannot grow without bound.
        if self.writes.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            users.retain(|_, sessions| {
                sessions.retain(|_, e| e.live(now));
                !sessions.is_empty()
            });
        }
        let sessions = users.entry(s.user_id).or_default();
        sessions.retain(|_, e| e.live(now));
        let new_id = s.session_id.clone();
        sessions.insert(s.session_id, entry);
        while sessions.len() > self.policy.max_per_user as usize {
            // The oldest others go; never the session being created.
            let oldest = sessions
                .iter()
                .filter(|(sid, _)| **sid != new_id)
                .min_by_key(|(_, e)| (e.absolute, e.created))
                .map(|(sid, _)| sid.clone());
            match oldest {
                Some(sid) => sessions.remove(&sid),
                None => break,
            };
        }
        Ok(stored)
    }

    async fn touch(&self, user: Uuid, session_id: &str) -> Result<Option<StoredSession>, RedisError> {
        let now = now_ms();
        let mut users = self.users();
        let Some(sessions) = users.get_mut(&user) else { return Ok(None) };
        match sessions.get_mut(session_id) {
            Some(e) if e.live(now) => {
                e.seen = now;
                e.expires = now.saturating_add(ms(self.policy.idle)).min(e.absolute);
                Ok(Some(e.stored(session_id)))
            }
            Some(_) => {
                sessions.remove(session_id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn rotate(&self, user: Uuid, session_id: &str, presented: &str, next: &str) -> Result<Rotation, RedisError> {
        let now = now_ms();
        let mut users = self.users();
        let Some(sessions) = users.get_mut(&user) else { return Ok(Rotation::Missing) };
        let Some(e) = sessions.get_mut(session_id) else { return Ok(Rotation::Missing) };
        if !e.live(now) {
            sessions.remove(session_id);
            return Ok(Rotation::Missing);
        }
        if e.refresh == presented {
            let old = std::mem::replace(&mut e.refresh, next.to_owned());
            e.rotated.push_front(old.clone());
            e.rotated.truncate(self.policy.rotated_kept as usize);
            e.previous = Some((old, now));
            e.seen = now;
            e.expires = now.saturating_add(ms(self.policy.idle)).min(e.absolute);
            return Ok(Rotation::Rotated(e.stored(session_id)));
        }
        if let Some((previous, at)) = &e.previous
            && previous == presented
            && now - at < ms(self.policy.race_grace)
        {
            if e.refresh != next {
                return Ok(Rotation::Concurrent);
            }
            e.seen = now;
            e.expires = now.saturating_add(ms(self.policy.idle)).min(e.absolute);
            return Ok(Rotation::Repeated(e.stored(session_id)));
        }
        if e.rotated.iter().any(|h| h == presented) {
            sessions.remove(session_id);
            return Ok(Rotation::Reused);
        }
        Ok(Rotation::Mismatch)
    }

    async fn list(&self, user: Uuid) -> Result<Vec<StoredSession>, RedisError> {
        let now = now_ms();
        let mut users = self.users();
        let Some(sessions) = users.get_mut(&user) else { return Ok(Vec::new()) };
        sessions.retain(|_, e| e.live(now));
        let mut out: Vec<StoredSession> = sessions.iter().map(|(sid, e)| e.stored(sid)).collect();
        out.sort_by_key(|s| s.created_at_ms);
        Ok(out)
    }

    async fn revoke(&self, user: Uuid, session_id: &str) -> Result<bool, RedisError> {
        let now = now_ms();
        let mut users = self.users();
        let Some(sessions) = users.get_mut(&user) else { return Ok(false) };
        Ok(sessions.remove(session_id).is_some_and(|e| e.live(now)))
    }

    async fn revoke_all(&self, user: Uuid) -> Result<u64, RedisError> {
        let now = now_ms();
        let removed = self.users().remove(&user).unwrap_or_default();
        Ok(removed.values().filter(|e| e.live(now)).count() as u64)
    }
}
