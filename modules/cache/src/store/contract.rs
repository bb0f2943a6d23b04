//! The contract every [`CacheStore`] adapter passes.

use std::{sync::Arc, time::Duration};

use super::*;

const MINUTE: Duration = Duration::from_secs(60);

fn scope() -> String {
    app_core::testing::unique_prefix()
}

fn key<'a>(scope: &'a str, item: &'a str) -> EntryKey<'a> {
    EntryKey { namespace: "test.v1", scope, item, generation_ttl: Duration::from_secs(180) }
}

fn micros_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_micros() as u64
}

pub async fn a_written_entry_reads_back_under_its_generation(store: Arc<dyn CacheStore>) {
    let scope = scope();
    let empty = store.read(key(&scope, "a")).await.expect("read");
    assert_eq!(empty.value, None);
    assert!(empty.generation > micros_now() - 60_000_000, "a new scope's generation comes from the clock");
    assert!(store.write(key(&scope, "a"), b"bytes: with a colon", MINUTE, None).await.expect("write"));
    let read = store.read(key(&scope, "a")).await.expect("read");
    assert_eq!(read, Read { generation: empty.generation, value: Some(b"bytes: with a colon".to_vec()) });
    assert_eq!(store.read(key(&scope, "b")).await.expect("read").value, None, "items are separate");
}

pub async fn a_bump_hides_every_entry_of_the_scope_only(store: Arc<dyn CacheStore>) {
    let (scope, other) = (scope(), scope());
    store.write(key(&scope, "a"), b"1", MINUTE, None).await.expect("write");
    store.write(key(&scope, "b"), b"2", MINUTE, None).await.expect("write");
    store.write(key(&other, "a"), b"3", MINUTE, None).await.expect("write");
    let before = store.read(key(&scope, "a")).await.expect("read").generation;
    let first = store.bump("test.v1", &scope, MINUTE, None).await.expect("bump");
    assert!(first > before);
    assert_eq!(store.read(key(&scope, "a")).await.expect("read"), Read { generation: first, value: None });
    assert_eq!(store.read(key(&scope, "b")).await.expect("read").value, None);
    let others = store.read(key(&other, "a")).await.expect("read").value;
    assert_eq!(others, Some(b"3".to_vec()), "other scopes keep theirs");
    let second = store.bump("test.v1", &scope, MINUTE, None).await.expect("bump");
    assert!(second > first);
    store.write(key(&scope, "a"), b"new", MINUTE, None).await.expect("write");
    let read = store.read(key(&scope, "a")).await.expect("read");
    assert_eq!(read, Read { generation: second, value: Some(b"new".to_vec()) });
}

pub async fn a_write_under_a_dead_generation_is_refused(store: Arc<dyn CacheStore>) {
    // (and so is one expecting a generation the scope does not have)
    let scope = scope();
    let seen = store.read(key(&scope, "a")).await.expect("read").generation;
    // A writer commits and bumps while this reader loads...
    store.bump("test.v1", &scope, MINUTE, None).await.expect("bump");
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

pub async fn an_expired_generation_never_revives_a_dead_entry(store: Arc<dyn CacheStore>) {
    let scope = scope();
    let short = EntryKey { generation_ttl: Duration::from_millis(300), ..key(&scope, "a") };
    store.bump("test.v1", &scope, Duration::from_millis(300), None).await.expect("bump");
    // An entry that outlives its scope's counter (as with an evicted counter)...
    assert!(store.write(short, b"old", MINUTE, None).await.expect("write"));
    let old = store.read(short).await.expect("read").generation;
    tokio::time::sleep(Duration::from_millis(450)).await;
    // ...is not current under the counter that comes back, nor after the next bump.
    let fresh = store.read(short).await.expect("read");
    assert!(fresh.generation > old && fresh.value.is_none(), "{fresh:?}");
    let bumped = store.bump("test.v1", &scope, MINUTE, None).await.expect("bump");
    assert!(bumped > fresh.generation);
    assert_eq!(store.read(short).await.expect("read").value, None);
}

pub async fn every_write_keeps_the_generation_alive(store: Arc<dyn CacheStore>) {
    let scope = scope();
    let short = EntryKey { generation_ttl: Duration::from_millis(400), ..key(&scope, "a") };
    let generation = store.read(short).await.expect("read").generation;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(store.write(short, b"v", MINUTE, Some(generation)).await.expect("write"), "still the same generation");
    }
    assert_eq!(store.read(short).await.expect("read"), Read { generation, value: Some(b"v".to_vec()) });
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
            tokio::spawn(
                async move { store.try_lock(key(&scope, "a"), 7, &format!("t{i}"), MINUTE).await.expect("lock") },
            )
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
    store.unlock(key(&scope, "a"), 7, "someone-else").await.expect("unlock");
    assert!(!store.try_lock(key(&scope, "a"), 7, "x", MINUTE).await.expect("lock"), "a wrong token releases nothing");
    assert!(store.try_lock(key(&scope, "a"), 8, "y", MINUTE).await.expect("lock"), "another generation fills apart");
    store.unlock(key(&scope, "a"), 7, &holder).await.expect("unlock");
    assert!(store.try_lock(key(&scope, "a"), 7, "x", MINUTE).await.expect("lock"), "released by its holder");
    assert!(store.read(key(&scope, "a")).await.expect("read").value.is_none(), "the lock is not an entry");
}

pub async fn a_fill_lock_expires_by_itself(store: Arc<dyn CacheStore>) {
    let scope = scope();
    assert!(store.try_lock(key(&scope, "a"), 1, "t1", Duration::from_millis(300)).await.expect("lock"));
    assert!(!store.try_lock(key(&scope, "a"), 1, "t2", MINUTE).await.expect("lock"));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.try_lock(key(&scope, "a"), 1, "t2", MINUTE).await.expect("lock"));
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
