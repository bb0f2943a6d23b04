//! The contract every [`CacheStore`] adapter passes.

use std::{sync::Arc, time::Duration};

use super::*;

const MINUTE: Duration = Duration::from_secs(60);

fn scope() -> String {
    app_core::testing::unique_prefix()
}

fn key<'a>(scope: &'a str, item: &'a str) -> EntryKey<'a> {
    EntryKey { namespace: "test.v1", scope, item }
}

pub async fn a_written_entry_reads_back_under_generation_zero(store: Arc<dyn CacheStore>) {
    let scope = scope();
    let empty = store.read(key(&scope, "a")).await.expect("read");
    assert_eq!(empty, Read { generation: 0, value: None });
    assert!(store.write(key(&scope, "a"), b"bytes: with a colon", MINUTE, None).await.expect("write"));
    let read = store.read(key(&scope, "a")).await.expect("read");
    assert_eq!(read, Read { generation: 0, value: Some(b"bytes: with a colon".to_vec()) });
    assert_eq!(store.read(key(&scope, "b")).await.expect("read").value, None, "items are separate");
}

pub async fn a_bump_hides_every_entry_of_the_scope_only(store: Arc<dyn CacheStore>) {
    let (scope, other) = (scope(), scope());
    store.write(key(&scope, "a"), b"1", MINUTE, None).await.expect("write");
    store.write(key(&scope, "b"), b"2", MINUTE, None).await.expect("write");
    store.write(key(&other, "a"), b"3", MINUTE, None).await.expect("write");
    assert_eq!(store.bump("test.v1", &scope, MINUTE).await.expect("bump"), 1);
    assert_eq!(store.read(key(&scope, "a")).await.expect("read"), Read { generation: 1, value: None });
    assert_eq!(store.read(key(&scope, "b")).await.expect("read").value, None);
    assert_eq!(
        store.read(key(&other, "a")).await.expect("read").value,
        Some(b"3".to_vec()),
        "other scopes keep theirs"
    );
    assert_eq!(store.bump("test.v1", &scope, MINUTE).await.expect("bump"), 2);
    store.write(key(&scope, "a"), b"new", MINUTE, None).await.expect("write");
    assert_eq!(store.read(key(&scope, "a")).await.expect("read"), Read { generation: 2, value: Some(b"new".to_vec()) });
}

pub async fn a_write_under_a_dead_generation_is_refused(store: Arc<dyn CacheStore>) {
    let scope = scope();
    let seen = store.read(key(&scope, "a")).await.expect("read").generation;
    // A writer commits and bumps while this reader loads...
    store.bump("test.v1", &scope, MINUTE).await.expect("bump");
    // ...so the reader's stale value is not stored.
    assert!(!store.write(key(&scope, "a"), b"stale", MINUTE, Some(seen)).await.expect("write"));
    assert_eq!(store.read(key(&scope, "a")).await.expect("read").value, None);
    let now = store.read(key(&scope, "a")).await.expect("read").generation;
    assert!(store.write(key(&scope, "a"), b"fresh", MINUTE, Some(now)).await.expect("write"));
    assert_eq!(store.read(key(&scope, "a")).await.expect("read").value, Some(b"fresh".to_vec()));
}

pub async fn entries_expire_after_their_ttl(store: Arc<dyn CacheStore>) {
    let scope = scope();
    store.write(key(&scope, "a"), b"short", Duration::from_millis(300), None).await.expect("write");
    assert!(store.read(key(&scope, "a")).await.expect("read").value.is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.read(key(&scope, "a")).await.expect("read").value, None);
}

pub async fn an_expired_generation_counts_from_zero_again(store: Arc<dyn CacheStore>) {
    let scope = scope();
    store.bump("test.v1", &scope, Duration::from_millis(300)).await.expect("bump");
    assert_eq!(store.read(key(&scope, "a")).await.expect("read").generation, 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.read(key(&scope, "a")).await.expect("read").generation, 0);
}

pub async fn delete_removes_one_entry(store: Arc<dyn CacheStore>) {
    let scope = scope();
    store.write(key(&scope, "a"), b"1", MINUTE, None).await.expect("write");
    store.write(key(&scope, "b"), b"2", MINUTE, None).await.expect("write");
    assert!(store.delete(key(&scope, "a")).await.expect("delete"));
    assert!(!store.delete(key(&scope, "a")).await.expect("delete again"));
    assert_eq!(store.read(key(&scope, "a")).await.expect("read").value, None);
    assert!(store.read(key(&scope, "b")).await.expect("read").value.is_some());
}

pub async fn the_fill_lock_has_one_holder_and_only_its_token_releases_it(store: Arc<dyn CacheStore>) {
    let scope = scope();
    let attempts: Vec<_> = (0..50)
        .map(|i| {
            let (store, scope) = (store.clone(), scope.clone());
            tokio::spawn(async move { store.try_lock(key(&scope, "a"), &format!("t{i}"), MINUTE).await.expect("lock") })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, attempt) in attempts.into_iter().enumerate() {
        if attempt.await.expect("task") {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one filler");
    let holder = format!("t{}", winners[0]);
    store.unlock(key(&scope, "a"), "someone-else").await.expect("unlock");
    assert!(!store.try_lock(key(&scope, "a"), "x", MINUTE).await.expect("lock"), "a wrong token releases nothing");
    store.unlock(key(&scope, "a"), &holder).await.expect("unlock");
    assert!(store.try_lock(key(&scope, "a"), "x", MINUTE).await.expect("lock"), "released by its holder");
    assert!(store.read(key(&scope, "a")).await.expect("read").value.is_none(), "the lock is not an entry");
}

pub async fn a_fill_lock_expires_by_itself(store: Arc<dyn CacheStore>) {
    let scope = scope();
    assert!(store.try_lock(key(&scope, "a"), "t1", Duration::from_millis(300)).await.expect("lock"));
    assert!(!store.try_lock(key(&scope, "a"), "t2", MINUTE).await.expect("lock"));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.try_lock(key(&scope, "a"), "t2", MINUTE).await.expect("lock"));
}

pub async fn a_tag_invalidates_its_entries_across_scopes(store: Arc<dyn CacheStore>) {
    let (a, b, tag) = (scope(), scope(), scope());
    for (scope, item) in [(&a, "x"), (&b, "y"), (&b, "z")] {
        store.write(key(scope, item), b"v", MINUTE, None).await.expect("write");
    }
    store.tag(&tag, key(&a, "x"), MINUTE).await.expect("tag");
    store.tag(&tag, key(&b, "y"), MINUTE).await.expect("tag");
    assert_eq!(store.invalidate_tag(&tag).await.expect("invalidate"), 2);
    assert_eq!(store.read(key(&a, "x")).await.expect("read").value, None);
    assert_eq!(store.read(key(&b, "y")).await.expect("read").value, None);
    assert!(store.read(key(&b, "z")).await.expect("read").value.is_some(), "untagged entries stay");
    assert_eq!(store.invalidate_tag(&tag).await.expect("again"), 0, "the tag is gone");
}
