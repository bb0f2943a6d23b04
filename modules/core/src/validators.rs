//! Per-user validators: small counters in Redis that change whenever something a module keeps
//! about a user changes (the user's sessions, a cache scope of theirs). A module registers the
//! key of its counter for a user ([`UserValidators::add`]); the request screen reads every
//! registered key of the request's user in the same Redis script as the rate-limit count (the
//! keys share the user's `{u:<id>}` hash tag), and runs the request with the values in scope
//! ([`scope`]). A module then serves what it keeps in process for that user when the counter
//! still has the value it had when the copy was made ([`current`]), and goes to Redis when it
//! does not: a change made on any instance before the request began is seen by the request,
//! with no extra round trip when nothing changed.
//!
//! Values are read per request, never remembered across requests, so there is no window in
//! which another instance's change goes unseen.

use std::sync::{Arc, RwLock};

use uuid::Uuid;

/// The key of a module's counter for a user.
pub type KeyOf = Arc<dyn Fn(Uuid) -> String + Send + Sync>;

/// The registered validators (one per app, shared by its modules).
#[derive(Clone, Default)]
pub struct UserValidators {
    keys: Arc<RwLock<Vec<KeyOf>>>,
}

impl std::fmt::Debug for UserValidators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserValidators").field("count", &self.len()).finish()
    }
}

/// Where a module's counter is in a request's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

impl UserValidators {
    /// Registers a counter: `key` gives its Redis key for a user (full, prefix included, in the
    /// user's `{u:<id>}` hash tag). The slot finds its value in a request.
    pub fn add(&self, key: impl Fn(Uuid) -> String + Send + Sync + 'static) -> Slot {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.push(Arc::new(key));
        Slot(keys.len() - 1)
    }

    /// How many counters are registered.
    pub fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every counter's key for `user`, in slot order.
    pub fn keys(&self, user: Uuid) -> Vec<String> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).iter().map(|key| key(user)).collect()
    }
}

/// The counters' values one request read for its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The user they are of.
    pub user: Uuid,
    /// By slot; `None` for a counter that does not exist (yet).
    pub values: Vec<Option<i64>>,
}

tokio::task_local! {
    static CURRENT: Option<Arc<Validated>>;
}

/// Runs `f` with `validated` as the request's values.
pub async fn scope<F: Future>(validated: Option<Arc<Validated>>, f: F) -> F::Output {
    CURRENT.scope(validated, f).await
}

/// The value of the counter in `slot` for `user`, as this request read it: `Some(value)` when the
/// request read it (`value` is `None` when the counter does not exist), `None` when it did not
/// (another user, no rate-limit script ran, outside a request).
pub fn current(slot: Slot, user: Uuid) -> Option<Option<i64>> {
    CURRENT
        .try_with(|current| {
            let validated = current.as_ref()?;
            if validated.user != user {
                return None;
            }
            validated.values.get(slot.0).copied()
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_seen_only_for_its_user_and_inside_its_request() {
        let validators = UserValidators::default();
        let (a, b) = (validators.add(|u| format!("a:{{u:{u}}}")), validators.add(|u| format!("b:{{u:{u}}}")));
        let user = Uuid::now_v7();
        assert_eq!(validators.keys(user), [format!("a:{{u:{user}}}"), format!("b:{{u:{user}}}")]);
        let validated = Arc::new(Validated { user, values: vec![Some(7), None] });
        scope(Some(validated), async {
            assert_eq!(current(a, user), Some(Some(7)));
            assert_eq!(current(b, user), Some(None), "read, and absent");
            assert_eq!(current(a, Uuid::now_v7()), None, "another user's");
        })
        .await;
        assert_eq!(current(a, user), None, "outside the request");
    }
}
