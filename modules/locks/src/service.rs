//! The lock service: tokens for callers, hashes for the store.

use std::{sync::Arc, time::Duration};

use sha2::{Digest, Sha256};

use crate::{
    LockError,
    store::{Check, LockStore},
};

/// A granted lock: what the holder presents and what its writes carry.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    /// The secret that proves holding (128 random bits, hex). Only its hash is stored.
    pub token: String,
    /// The fencing token the holder's writes carry.
    pub fencing: u64,
    /// The lease's length.
    pub ttl: Duration,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("token", &"[redacted]")
            .field("fencing", &self.fencing)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A lock's state for one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStatus {
    /// Whether anyone holds the lock.
    pub locked: bool,
    /// Time left on the lease (zero when free).
    pub expires_in: Duration,
    /// Whether the holder is `owner` (the caller).
    pub held_by: Option<String>,
}

/// Token locks with fencing tokens.
pub struct Locks {
    store: Arc<dyn LockStore>,
}

/// What the store keeps of a token: its SHA-256. Comparing digests leaks nothing about the token.
fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Locks {
    /// Locks over `store`.
    pub fn new(store: Arc<dyn LockStore>) -> Self {
        Self { store }
    }

    /// Takes the lock on `resource` for `owner` (a label: who holds it), or `Locked`.
    pub async fn acquire(&self, resource: &str, owner: &str, ttl: Duration) -> Result<Lease, LockError> {
        let token = format!("{:032x}", rand::random::<u128>());
        match self.store.acquire(resource, &digest(&token), owner, ttl).await? {
            Ok(fencing) => Ok(Lease { token, fencing, ttl }),
            Err(retry_after) => Err(LockError::Locked { retry_after }),
        }
    }

    /// The fencing token of the lease `token` holds: `Locked` when another holder has the
    /// lock, `NotHeld` when nobody does.
    pub async fn verify(&self, resource: &str, token: &str) -> Result<u64, LockError> {
        held(self.store.check(resource, &digest(token)).await?)
    }

    /// Renews the lease `token` holds to `ttl`; `NotHeld` for any other token.
    pub async fn extend(&self, resource: &str, token: &str, ttl: Duration) -> Result<Duration, LockError> {
        match self.store.extend(resource, &digest(token), ttl).await? {
            Check::Held { ttl, .. } => Ok(ttl),
            Check::Free | Check::HeldByOther { .. } => Err(LockError::NotHeld),
        }
    }

    /// Releases the lease `token` holds; `NotHeld` for any other token.
    pub async fn release(&self, resource: &str, token: &str) -> Result<(), LockError> {
        if self.store.release(resource, &digest(token)).await? { Ok(()) } else { Err(LockError::NotHeld) }
    }

    /// The lock's state.
    pub async fn status(&self, resource: &str) -> Result<LockStatus, LockError> {
        Ok(match self.store.holder(resource).await? {
            Some(h) => LockStatus { locked: true, expires_in: h.ttl, held_by: Some(h.owner) },
            None => LockStatus { locked: false, expires_in: Duration::ZERO, held_by: None },
        })
    }

    /// Runs `f` holding the lock on `resource` (taken for `ttl`, released afterwards, also when
    /// `f` fails), for short critical sections; `Locked` when someone else holds it. `f` gets the
    /// lease, whose fencing token its writes should carry in case the lease runs out.
    pub async fn with_lock<T, F, Fut>(&self, resource: &str, owner: &str, ttl: Duration, f: F) -> Result<T, LockError>
    where
        F: FnOnce(Lease) -> Fut,
        Fut: Future<Output = T>,
    {
        let lease = self.acquire(resource, owner, ttl).await?;
        let token = lease.token.clone();
        let out = f(lease).await;
        if let Err(err) = self.release(resource, &token).await {
            // The lease expires by itself; the work is done either way.
            tracing::debug!(resource, error = %err, "could not release a short lock");
        }
        Ok(out)
    }
}

fn held(check: Check) -> Result<u64, LockError> {
    match check {
        Check::Held { fencing, .. } => Ok(fencing),
        Check::HeldByOther { ttl } => Err(LockError::Locked { retry_after: ttl }),
        Check::Free => Err(LockError::NotHeld),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryLockStore;

    fn locks() -> Locks {
        Locks::new(Arc::new(MemoryLockStore::new()))
    }

    #[tokio::test]
    async fn tokens_are_random_and_verify_only_for_their_holder() {
        let locks = locks();
        let lease = locks.acquire("r", "alice", Duration::from_secs(5)).await.expect("free");
        assert_eq!(lease.token.len(), 32);
        assert_eq!(locks.verify("r", &lease.token).await.expect("held"), lease.fencing);
        let other = locks.verify("r", "0".repeat(32).as_str()).await.expect_err("not the holder");
        assert!(matches!(other, LockError::Locked { .. }), "{other:?}");
        assert!(matches!(locks.extend("r", "nope", Duration::from_secs(5)).await, Err(LockError::NotHeld)));
        assert!(matches!(locks.release("r", "nope").await, Err(LockError::NotHeld)));
        locks.release("r", &lease.token).await.expect("the holder releases");
        assert!(matches!(locks.verify("r", &lease.token).await, Err(LockError::NotHeld)));
        let again = locks.acquire("r", "bob", Duration::from_secs(5)).await.expect("free");
        assert_ne!(again.token, lease.token);
        assert!(!format!("{again:?}").contains(&again.token), "Debug redacts the token");
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_closed_with_a_503() {
        let server = app_core::testing::RedisServer::start();
        let redis = app_redis::Redis::connect(&app_redis::testing::config(server.url())).expect("client");
        assert!(redis.wait_connected(Duration::from_secs(5)).await);
        let locks = Locks::new(Arc::new(crate::store::RedisLockStore::new(redis)));
        server.stop();
        let err = locks.acquire("r", "alice", Duration::from_secs(5)).await.expect_err("no store");
        assert!(matches!(err, LockError::Unavailable(_)), "{err:?}");
        let api: app_core::ApiError = err.into();
        assert_eq!(api.status(), app_core::problem::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.code(), app_core::ErrorCode::DEPENDENCY_UNAVAILABLE);
    }

    #[tokio::test]
    async fn with_lock_runs_holding_the_lock_and_releases_it() {
        let locks = locks();
        let seen = locks
            .with_lock("r", "alice", Duration::from_secs(5), |lease| {
                let locks = &locks;
                async move {
                    let inside = locks.acquire("r", "bob", Duration::from_secs(5)).await;
                    (lease.fencing, matches!(inside, Err(LockError::Locked { .. })))
                }
            })
            .await
            .expect("free");
        assert!(seen.1, "others are locked out meanwhile");
        assert!(!locks.status("r").await.expect("status").locked, "released afterwards");
    }
}
