//! The contract every [`LockStore`] adapter passes.

use std::{sync::Arc, time::Duration};

use super::*;

const MINUTE: Duration = Duration::from_secs(60);

fn resource() -> String {
    format!("test:{}", app_core::testing::unique_prefix())
}

pub async fn one_holder_at_a_time_with_growing_fencing_tokens(store: Arc<dyn LockStore>) {
    let r = resource();
    let first = store.acquire(&r, "h1", "alice", MINUTE).await.expect("acquire").expect("free");
    let refused = store.acquire(&r, "h2", "bob", MINUTE).await.expect("acquire").expect_err("held");
    assert!(refused > Duration::from_secs(55) && refused <= MINUTE, "the holder's time left: {refused:?}");
    assert!(store.release(&r, "h1").await.expect("release"));
    let second = store.acquire(&r, "h2", "bob", MINUTE).await.expect("acquire").expect("free again");
    assert!(second > first, "fencing tokens grow: {first} then {second}");
}

pub async fn fifty_concurrent_acquires_have_exactly_one_winner(store: Arc<dyn LockStore>) {
    let r = resource();
    let attempts: Vec<_> = (0..50)
        .map(|i| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(
                async move { store.acquire(&r, &format!("h{i}"), "u", MINUTE).await.expect("acquire").is_ok() },
            )
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        winners += usize::from(attempt.await.expect("task"));
    }
    assert_eq!(winners, 1);
}

pub async fn only_the_holders_token_checks_extends_or_releases(store: Arc<dyn LockStore>) {
    let r = resource();
    let fencing = store.acquire(&r, "h1", "alice", Duration::from_secs(5)).await.expect("acquire").expect("free");
    assert!(matches!(store.check(&r, "h1").await.expect("check"), Check::Held { fencing: f, .. } if f == fencing));
    assert!(matches!(store.check(&r, "other").await.expect("check"), Check::HeldByOther { .. }));
    assert!(matches!(store.extend(&r, "other", MINUTE).await.expect("extend"), Check::HeldByOther { .. }));
    assert!(!store.release(&r, "other").await.expect("release"), "a wrong token releases nothing");
    match store.extend(&r, "h1", MINUTE).await.expect("extend") {
        Check::Held { ttl, .. } => assert!(ttl > Duration::from_secs(55), "renewed: {ttl:?}"),
        other => panic!("the holder extends: {other:?}"),
    }
    assert!(store.release(&r, "h1").await.expect("release"));
    assert_eq!(store.check(&r, "h1").await.expect("check"), Check::Free);
    assert!(!store.release(&r, "h1").await.expect("release"), "released once");
}

pub async fn a_lease_expires_by_itself_and_the_next_fencing_token_is_larger(store: Arc<dyn LockStore>) {
    let r = resource();
    let first = store.acquire(&r, "h1", "alice", Duration::from_millis(300)).await.expect("acquire").expect("free");
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.check(&r, "h1").await.expect("check"), Check::Free, "expired");
    assert!(!store.release(&r, "h1").await.expect("release"), "an expired holder releases nothing");
    let second = store.acquire(&r, "h2", "bob", MINUTE).await.expect("acquire").expect("free");
    assert!(second > first);
    assert_eq!(store.holder(&r).await.expect("holder").map(|h| (h.owner, h.fencing)), Some(("bob".into(), second)));
}

pub async fn the_holder_is_reported_with_its_owner(store: Arc<dyn LockStore>) {
    let r = resource();
    assert_eq!(store.holder(&r).await.expect("holder"), None);
    let fencing = store.acquire(&r, "h1", "alice", MINUTE).await.expect("acquire").expect("free");
    let holder = store.holder(&r).await.expect("holder").expect("held");
    assert_eq!((holder.owner.as_str(), holder.fencing), ("alice", fencing));
    assert!(holder.ttl > Duration::from_secs(55) && holder.ttl <= MINUTE);
}

pub async fn resources_are_independent(store: Arc<dyn LockStore>) {
    let (a, b) = (resource(), resource());
    store.acquire(&a, "h1", "alice", MINUTE).await.expect("acquire").expect("free");
    store.acquire(&b, "h2", "alice", MINUTE).await.expect("acquire").expect("another resource is free");
}
