//! The SQL repository and the service's fencing on every backend (SQLite, and PostgreSQL when
//! `TEST_DATABASE_URL` is set), against real databases and a real Redis for the locks.

use std::{sync::Arc, time::Duration};

use app_cache::{CacheConfig, CacheManager, CacheMetrics, store::MemoryCacheStore};
use app_core::{pagination::Pagination, testing::TestDatabase};
use app_database::{Database, DatabaseConfig, DatabaseContainer, SqlDatabase};
use app_library::{
    ItemChanges, ItemType, LibraryConfig, LibraryError, LibraryRepository, LibraryService, LibraryServiceImpl,
    ListQuery, NewItem, RawItem, SqlLibraryRepository, Written,
};
use app_locks::{Locks, store::RedisLockStore};
use shaku::HasComponent;
use uuid::Uuid;

/// The tables this module's repository needs: its own migrations and its imports'.
fn migrations() -> Vec<app_core::Migration> {
    app_core::module::ModuleSet::new(vec![Box::new(app_library::LibraryModule)]).migrations().expect("unique versions")
}

async fn open(test_db: &TestDatabase) -> (Database, Arc<dyn SqlDatabase>) {
    let cfg = DatabaseConfig { url: test_db.url().to_owned(), ..Default::default() };
    let database = Database::connect(&cfg).await.expect("connect");
    database.migrate(&migrations()).await.expect("migrate");
    let module = DatabaseContainer::with_database(database.clone()).build();
    let db: Arc<dyn SqlDatabase> = module.resolve();
    (database, db)
}

async fn user(database: &Database) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) \
         VALUES ($1, $2, 'U', 'user', 'h', 0, 0)",
    )
    .bind(id.to_string())
    .bind(format!("{id}@example.com"))
    .execute(database.pool())
    .await
    .expect("user");
    id
}

fn song(title: &str) -> NewItem {
    NewItem::parse(RawItem {
        kind: ItemType::Song,
        title,
        artist: None,
        album: None,
        duration_seconds: None,
        tags: None,
    })
    .expect("valid")
}

fn titled(title: &str) -> ItemChanges {
    ItemChanges { title: Some(title.to_owned()), ..ItemChanges::default() }
}

#[tokio::test]
async fn items_round_trip_page_and_stay_with_their_owner_on_every_backend() {
    for test_db in TestDatabase::all().await {
        let (database, db) = open(&test_db).await;
        let repo = SqlLibraryRepository::new(db, 10_000);
        let (owner, other) = (user(&database).await, user(&database).await);
        let mut full = song("Full");
        full.artist = Some("Ada".into());
        full.duration_seconds = Some(300);
        full.tags = vec!["a".into(), "b".into()];
        let created = repo.create(owner, full).await.expect("create");
        assert_eq!(repo.find(owner, created.id).await.expect("find"), Some(created.clone()), "{}", test_db.backend());
        assert_eq!(repo.find(other, created.id).await.expect("find"), None, "another owner sees nothing");
        let many = repo.create_many(owner, (0..4).map(|i| song(&format!("s{i}"))).collect()).await.expect("many");
        assert_eq!(many.len(), 4);

        let page =
            |p, s| ListQuery::parse(None, None, Pagination::new(Some(p), Some(s)).expect("valid")).expect("valid");
        let first = repo.list(owner, &page(1, 2)).await.expect("list");
        assert_eq!((first.total, first.items.len()), (5, 2), "{}", test_db.backend());
        let last = repo.list(owner, &page(3, 2)).await.expect("list");
        assert_eq!(last.items.len(), 1);
        let far = repo.list(owner, &page(1_000_000, 100)).await.expect("a huge page is just empty");
        assert!(far.items.is_empty());
        let search = ListQuery::parse(Some(ItemType::Song), Some("ADA"), Pagination::new(None, None).expect("valid"))
            .expect("valid");
        assert_eq!(repo.list(owner, &search).await.expect("search").total, 1, "{}: artist search", test_db.backend());

        let scanned = repo.scan(owner, None, 3).await.expect("scan");
        let rest = repo.scan(owner, Some(scanned[2].id), 10).await.expect("scan");
        assert_eq!(scanned.len() + rest.len(), 5, "a scan pages through everything once");

        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(owner.to_string())
            .execute(database.pool())
            .await
            .expect("delete");
        assert_eq!(repo.find(owner, created.id).await.expect("find"), None, "items go with their owner");
        database.close().await;
    }
}

#[tokio::test]
async fn a_write_with_an_older_fencing_token_changes_nothing_on_every_backend() {
    for test_db in TestDatabase::all().await {
        let (database, db) = open(&test_db).await;
        let repo = SqlLibraryRepository::new(db, 10_000);
        let owner = user(&database).await;
        let item = repo.create(owner, song("v0")).await.expect("create");
        let Written::Done(after) = repo.update(owner, item.id, &titled("v2"), 200).await.expect("update") else {
            panic!("a fresh item takes any fencing token")
        };
        assert_eq!(after.title, "v2");
        assert_eq!(repo.update(owner, item.id, &titled("v1"), 100).await.expect("update"), Written::Stale);
        assert!(
            matches!(repo.update(owner, item.id, &titled("v2b"), 200).await.expect("update"), Written::Done(_)),
            "the same holder writes again"
        );
        assert_eq!(repo.delete(owner, item.id, 100).await.expect("delete"), Written::Stale, "{}", test_db.backend());
        assert_eq!(repo.find(owner, item.id).await.expect("find").map(|i| i.title), Some("v2b".into()));
        assert_eq!(repo.update(owner, Uuid::now_v7(), &titled("x"), 1).await.expect("update"), Written::NotFound);
        assert_eq!(repo.delete(owner, item.id, 300).await.expect("delete"), Written::Done(()));
        database.close().await;
    }
}

#[tokio::test]
async fn a_holder_whose_lock_expired_cannot_overwrite_the_next_holders_change() {
    let test_db = TestDatabase::sqlite();
    let (database, db) = open(&test_db).await;
    let repo: Arc<dyn LibraryRepository> = Arc::new(SqlLibraryRepository::new(db, 10_000));
    let cache =
        Arc::new(CacheManager::new(Arc::new(MemoryCacheStore::new()), CacheConfig::default(), CacheMetrics::default()));
    let locks = Arc::new(Locks::new(Arc::new(RedisLockStore::new(app_redis::testing::redis().await))));
    let service = LibraryServiceImpl::new(repo.clone(), cache, locks.clone(), LibraryConfig::default());
    let owner = user(&database).await;
    let item = service.create(owner, song("v0")).await.expect("create");
    let resource = format!("lib:{}", item.id);

    // A takes the lock and checks it, then stalls (a GC pause, a slow network) past its lease...
    let a = locks.acquire(&resource, &owner.to_string(), Duration::from_millis(200)).await.expect("free");
    let a_fencing = locks.verify(&resource, &a.token).await.expect("held");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...B takes the lock and writes...
    let b = locks.acquire(&resource, &owner.to_string(), Duration::from_secs(5)).await.expect("expired, so free");
    assert!(b.fencing > a_fencing);
    service.update(owner, item.id, titled("by B"), Some(&b.token)).await.expect("B writes");
    // ...and A's write, arriving late with its old fencing token, changes nothing.
    assert_eq!(repo.update(owner, item.id, &titled("by A"), a_fencing).await.expect("update"), Written::Stale);
    let err = service.update(owner, item.id, titled("by A"), Some(&a.token)).await.expect_err("A no longer holds it");
    assert!(matches!(err, LibraryError::Lock(app_locks::LockError::Locked { .. })), "{err:?}");
    assert_eq!(service.get(owner, item.id).await.expect("get").title, "by B");
    database.close().await;
}

#[tokio::test]
async fn the_item_quota_holds_exactly_under_concurrent_writers_on_every_backend() {
    for test_db in TestDatabase::all().await {
        let (database, db) = open(&test_db).await;
        let backend = test_db.backend();
        let repo = Arc::new(SqlLibraryRepository::new(db, 5));
        let (owner, other) = (user(&database).await, user(&database).await);
        // An item written before the quota was counted (as after an upgrade): the first write
        // counts it.
        repo.create(owner, song("old")).await.expect("create");
        sqlx::query("DELETE FROM library_usage").execute(database.pool()).await.expect("forget the count");
        let writes = (0..12).map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.create(owner, song(&format!("s{i}"))).await })
        });
        let results = futures::future::join_all(writes).await;
        let created = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        let refused = results.iter().filter(|r| matches!(r, Ok(Err(LibraryError::QuotaExceeded { limit: 5 })))).count();
        assert_eq!((created, refused), (4, 8), "{backend}: {results:?}");
        let many = repo.create_many(owner, vec![song("x")]).await;
        assert!(matches!(many, Err(LibraryError::QuotaExceeded { .. })), "{backend}");
        let page = ListQuery::parse(None, None, Pagination::new(Some(1), Some(100)).expect("page")).expect("query");
        assert_eq!(repo.list(owner, &page).await.expect("list").total, 5, "{backend}: nothing half-written");
        assert!(repo.create(other, song("theirs")).await.is_ok(), "{backend}: another owner is unaffected");
        let victim = repo.list(owner, &page).await.expect("list").items[0].id;
        assert_eq!(repo.delete(owner, victim, 0).await.expect("delete"), Written::Done(()));
        assert!(repo.create(owner, song("again")).await.is_ok(), "{backend}: a delete frees a place");
        let ids = vec![(Uuid::now_v7(), song("a")), (Uuid::now_v7(), song("b"))];
        assert!(matches!(repo.insert_missing(owner, ids).await, Err(LibraryError::QuotaExceeded { .. })));
        database.close().await;
    }
}
