//! Users' versions: one integer per user in Redis, in the user's `{u:<id>}` hash tag, moved on
//! by every change to something a module keeps about the user (a session ended early, a cache
//! scope of theirs invalidated), in the same script as the change. The request screen reads the
//! request's user's version in the same Redis script as the rate-limit count (the count's key
//! shares the tag) and records it in the request's scope ([`record`]); a module then serves what
//! it keeps in process for that user while the version is the one its copy was made under
//! ([`current`]), and goes to Redis when it is not: a change made on any instance before the
//! request began is seen by the request, with no extra round trip when nothing changed.
//!
//! One version for all of a user's state, not one counter per module: the read costs Redis one
//! `GET` per request where a counter per module cost an `MGET` of three (about 0.9 us of Redis
//! CPU per request, measured); the price is that any change drops all of the user's copies,
//! and changes are rare next to reads.
//!
//! Versions are read per request, never remembered across requests, so there is no window in
//! which another instance's change goes unseen.

use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use crate::{RequestId, context::RequestScope};

/// The key of a user's version.
pub type KeyOf = Arc<dyn Fn(Uuid) -> String + Send + Sync>;

/// Whether the screen reads users' versions, and under which key (one per app, shared by its
/// modules).
#[derive(Clone, Default)]
pub struct UserVersions {
    key: Arc<OnceLock<KeyOf>>,
}

impl std::fmt::Debug for UserVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserVersions").field("read", &self.is_read()).finish()
    }
}

impl UserVersions {
    /// Has the screen read each request's user's version, whose Redis key (full, prefix
    /// included, in the user's `{u:<id>}` hash tag) `key` gives: a module that keeps copies of
    /// users' state calls it. Every caller names the same key (the Redis module's
    /// `user_version_key`), so the first call's stays.
    pub fn read(&self, key: impl Fn(Uuid) -> String + Send + Sync + 'static) {
        let _ = self.key.set(Arc::new(key));
    }

    /// Whether a module asked for versions to be read.
    pub fn is_read(&self) -> bool {
        self.key.get().is_some()
    }

    /// The key of `user`'s version, when versions are read.
    pub fn key(&self, user: Uuid) -> Option<String> {
        self.key.get().map(|key| key(user))
    }
}

/// The version one request read for its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadVersion {
    /// The user it is of.
    pub user: Uuid,
    /// `None` when the user has none (yet).
    pub version: Option<i64>,
}

/// Records `read` as the version read by the request being served on this task: in its
/// [`RequestScope`], not a task-local scope of its own around the rest of the request (one
/// layer less to build, move and poll). Outside a request, nothing is recorded.
pub fn record(read: Option<ReadVersion>) {
    RequestScope::with_current(|scope| scope.read().set(read));
}

/// Runs `f` in a request scope of its own with `read` recorded: for work outside a served
/// request (tests, tools).
pub async fn scope<F: Future>(read: Option<ReadVersion>, f: F) -> F::Output {
    RequestScope::new(RequestId::generate())
        .run(async move {
            record(read);
            f.await
        })
        .await
        .0
}

/// `user`'s version as this request read it: `Some(version)` when the request read it
/// (`version` is `None` when the user has none), `None` when it did not (another user, no
/// rate-limit script ran, outside a request).
pub fn current(user: Uuid) -> Option<Option<i64>> {
    RequestScope::with_current(|scope| scope.read().get())
        .flatten()
        .filter(|read| read.user == user)
        .map(|read| read.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_version_is_seen_only_for_its_user_and_inside_its_request() {
        let versions = UserVersions::default();
        assert!(!versions.is_read());
        versions.read(|u| format!("v:{{u:{u}}}"));
        versions.read(|u| format!("other:{{u:{u}}}"));
        let user = Uuid::now_v7();
        assert_eq!(versions.key(user), Some(format!("v:{{u:{user}}}")), "the first key stays");
        scope(Some(ReadVersion { user, version: Some(7) }), async {
            assert_eq!(current(user), Some(Some(7)));
            assert_eq!(current(Uuid::now_v7()), None, "another user's");
        })
        .await;
        scope(Some(ReadVersion { user, version: None }), async {
            assert_eq!(current(user), Some(None), "read, and absent");
        })
        .await;
        assert_eq!(current(user), None, "outside the request");
    }
}
