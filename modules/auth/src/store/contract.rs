//! The contract every [`SessionStore`] adapter passes. A suite test receives a factory, so it
//! can pick the lifetimes it needs (short idle and absolute timeouts for the expiry tests).

use std::{collections::HashSet, sync::Arc, time::Duration};

use uuid::Uuid;

use super::*;
use crate::tokens::new_session_id;

/// Makes a store of the adapter under test with a policy.
pub type Factory = Arc<dyn Fn(SessionPolicy) -> Arc<dyn SessionStore> + Send + Sync>;

fn new_session(user: Uuid, refresh: &str) -> NewSession {
    NewSession { user_id: user, session_id: new_session_id(), blob: b"sealed".to_vec(), refresh_hash: refresh.into() }
}

fn strict() -> SessionPolicy {
    SessionPolicy { race_grace: Duration::ZERO, ..SessionPolicy::default() }
}

pub async fn a_created_session_can_be_touched(make: Factory) {
    let store = make(SessionPolicy::default());
    let user = Uuid::now_v7();
    let created = store.create(new_session(user, "r1")).await.expect("create");
    assert!(created.expires_at_ms > created.created_at_ms);
    let touched = store.touch(user, &created.session_id).await.expect("touch").expect("live");
    assert_eq!(touched.blob, b"sealed");
    assert_eq!(touched.created_at_ms, created.created_at_ms);
    assert!(touched.last_seen_ms >= created.last_seen_ms);
    assert!(store.touch(user, &new_session_id()).await.expect("touch").is_none(), "unknown session");
    assert!(store.touch(Uuid::now_v7(), &created.session_id).await.expect("touch").is_none(), "another user");
}

pub async fn a_refresh_token_rotates_once_and_reuse_revokes_the_session(make: Factory) {
    let store = make(strict());
    let user = Uuid::now_v7();
    let s = store.create(new_session(user, "r1")).await.expect("create");
    assert!(matches!(store.rotate(user, &s.session_id, "r1", "r2").await.expect("rotate"), Rotation::Rotated(_)));
    assert_eq!(store.rotate(user, &s.session_id, "r1", "r3").await.expect("rotate"), Rotation::Reused);
    assert!(store.touch(user, &s.session_id).await.expect("touch").is_none(), "reuse revoked the session");
    assert_eq!(store.rotate(user, &s.session_id, "r2", "r4").await.expect("rotate"), Rotation::Missing);
}

pub async fn an_unknown_refresh_token_changes_nothing(make: Factory) {
    let store = make(strict());
    let user = Uuid::now_v7();
    let s = store.create(new_session(user, "r1")).await.expect("create");
    assert_eq!(store.rotate(user, &s.session_id, "forged", "r2").await.expect("rotate"), Rotation::Mismatch);
    assert!(matches!(store.rotate(user, &s.session_id, "r1", "r2").await.expect("rotate"), Rotation::Rotated(_)));
}

pub async fn a_repeated_refresh_within_the_grace_gets_the_same_successor_and_later_counts_as_reuse(make: Factory) {
    let store = make(SessionPolicy { race_grace: Duration::from_millis(500), ..SessionPolicy::default() });
    let user = Uuid::now_v7();
    let s = store.create(new_session(user, "r1")).await.expect("create");
    assert!(matches!(store.rotate(user, &s.session_id, "r1", "r2").await.expect("rotate"), Rotation::Rotated(_)));
    let repeated = store.rotate(user, &s.session_id, "r1", "r2").await.expect("rotate");
    assert!(matches!(repeated, Rotation::Repeated(ref t) if t.blob == b"sealed"), "{repeated:?}");
    assert_eq!(store.rotate(user, &s.session_id, "r1", "other").await.expect("rotate"), Rotation::Concurrent);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.rotate(user, &s.session_id, "r1", "r2").await.expect("rotate"), Rotation::Reused);
    assert!(store.touch(user, &s.session_id).await.expect("touch").is_none(), "reuse revoked the session");
}

pub async fn racing_refreshes_with_one_token_all_get_the_one_successor(make: Factory) {
    let store = make(SessionPolicy::default());
    let user = Uuid::now_v7();
    let s = store.create(new_session(user, "r0")).await.expect("create");
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (store, sid) = (store.clone(), s.session_id.clone());
            tokio::spawn(async move { store.rotate(user, &sid, "r0", "r1").await.expect("rotate") })
        })
        .collect();
    let mut rotated = 0;
    for racer in racers {
        match racer.await.expect("task") {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Repeated(_) => {}
            other => panic!("a racer saw {other:?}"),
        }
    }
    assert_eq!(rotated, 1, "exactly one rotation happens; the others see it");
    assert!(matches!(store.rotate(user, &s.session_id, "r1", "r2").await.expect("rotate"), Rotation::Rotated(_)));
}

pub async fn concurrent_refreshes_with_one_token_never_fork_the_session(make: Factory) {
    let store = make(SessionPolicy::default());
    let user = Uuid::now_v7();
    let s = store.create(new_session(user, "r0")).await.expect("create");
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let (store, sid) = (store.clone(), s.session_id.clone());
            tokio::spawn(
                async move { (i, store.rotate(user, &sid, "r0", &format!("next-{i}")).await.expect("rotate")) },
            )
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (i, outcome) = racer.await.expect("task");
        match outcome {
            Rotation::Rotated(_) => winners.push(i),
            Rotation::Concurrent => {}
            other => panic!("a racer saw {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    let winner = format!("next-{}", winners[0]);
    let losers: HashSet<String> = (0..16).map(|i| format!("next-{i}")).filter(|n| *n != winner).collect();
    for loser in losers.iter().take(3) {
        assert_eq!(store.rotate(user, &s.session_id, loser, "x").await.expect("rotate"), Rotation::Mismatch);
    }
    assert!(matches!(store.rotate(user, &s.session_id, &winner, "after").await.expect("rotate"), Rotation::Rotated(_)));
}

pub async fn revoking_ends_one_session_and_only_the_owners(make: Factory) {
    let store = make(SessionPolicy::default());
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let a = store.create(new_session(user, "a")).await.expect("create");
    let b = store.create(new_session(user, "b")).await.expect("create");
    assert!(!store.revoke(other, &a.session_id).await.expect("revoke"), "not under another user");
    assert!(store.touch(user, &a.session_id).await.expect("touch").is_some(), "no effect");
    assert!(store.revoke(user, &a.session_id).await.expect("revoke"));
    assert!(!store.revoke(user, &a.session_id).await.expect("revoke"), "already gone");
    assert!(store.touch(user, &a.session_id).await.expect("touch").is_none());
    assert!(store.touch(user, &b.session_id).await.expect("touch").is_some(), "the other session lives on");
    // A slower write for the revoked session cannot bring it back.
    assert_eq!(store.rotate(user, &a.session_id, "a", "a2").await.expect("rotate"), Rotation::Missing);
    assert!(store.touch(user, &a.session_id).await.expect("touch").is_none());
    let ids: Vec<_> = store.list(user).await.expect("list").into_iter().map(|s| s.session_id).collect();
    assert_eq!(ids, vec![b.session_id]);
}

pub async fn revoking_all_ends_every_session_of_the_user_only(make: Factory) {
    let store = make(SessionPolicy::default());
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    for i in 0..3 {
        store.create(new_session(user, &format!("r{i}"))).await.expect("create");
    }
    let kept = store.create(new_session(other, "o")).await.expect("create");
    assert_eq!(store.revoke_all(user).await.expect("revoke all"), 3);
    assert!(store.list(user).await.expect("list").is_empty());
    assert_eq!(store.revoke_all(user).await.expect("revoke all"), 0);
    assert!(store.touch(other, &kept.session_id).await.expect("touch").is_some());
}

pub async fn listing_shows_live_sessions_oldest_first(make: Factory) {
    let store = make(SessionPolicy::default());
    let user = Uuid::now_v7();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(store.create(new_session(user, &format!("r{i}"))).await.expect("create").session_id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let listed = store.list(user).await.expect("list");
    assert_eq!(listed.iter().map(|s| s.session_id.clone()).collect::<Vec<_>>(), ids);
    assert!(listed.iter().all(|s| s.blob == b"sealed" && s.expires_at_ms > s.last_seen_ms));
    assert!(store.list(Uuid::now_v7()).await.expect("list").is_empty());
}

pub async fn the_session_count_per_user_is_capped(make: Factory) {
    let store = make(SessionPolicy { max_per_user: 3, ..SessionPolicy::default() });
    let user = Uuid::now_v7();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(store.create(new_session(user, &format!("r{i}"))).await.expect("create").session_id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let listed: Vec<_> = store.list(user).await.expect("list").into_iter().map(|s| s.session_id).collect();
    assert_eq!(listed, ids[2..].to_vec(), "the oldest sessions ended");
    assert!(store.touch(user, &ids[0]).await.expect("touch").is_none());
}

pub async fn an_idle_session_ends_and_use_keeps_it_alive(make: Factory) {
    let store = make(SessionPolicy { idle: Duration::from_millis(1500), ..SessionPolicy::default() });
    let user = Uuid::now_v7();
    let s = store.create(new_session(user, "r")).await.expect("create");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.touch(user, &s.session_id).await.expect("touch").is_some(), "use extends the idle timeout");
    }
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(store.touch(user, &s.session_id).await.expect("touch").is_none(), "idle for too long");
    assert_eq!(store.rotate(user, &s.session_id, "r", "r2").await.expect("rotate"), Rotation::Missing);
}

pub async fn a_session_ends_at_its_absolute_deadline_however_active(make: Factory) {
    let store = make(SessionPolicy { absolute: Duration::from_millis(600), ..SessionPolicy::default() });
    let user = Uuid::now_v7();
    let s = store.create(new_session(user, "r")).await.expect("create");
    assert!(s.expires_at_ms <= s.created_at_ms + 600, "the idle deadline never passes the absolute one");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while store.touch(user, &s.session_id).await.expect("touch").is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the session outlived its absolute deadline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.list(user).await.expect("list").is_empty());
}
