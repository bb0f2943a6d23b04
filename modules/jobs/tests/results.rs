//! Result documents in the SQL database on every backend (SQLite, and PostgreSQL when
//! `TEST_DATABASE_URL` is set): chunks under a lease, sealing fenced by the lease, expiry.

use std::sync::Arc;

use app_core::{Module, testing::TestDatabase};
use app_database::{Database, DatabaseConfig, DatabaseContainer, SqlDatabase};
use app_jobs::results::{JobResults, ResultMeta, ResultUsage, SqlJobResults, stream};
use futures::TryStreamExt;
use shaku::HasComponent;
use uuid::Uuid;

async fn open(test_db: &TestDatabase) -> (Database, Arc<dyn JobResults>) {
    let cfg = DatabaseConfig { url: test_db.url().to_owned(), ..Default::default() };
    let database = Database::connect(&cfg).await.expect("connect");
    database.migrate(&app_jobs::JobsModule.migrations()).await.expect("migrate");
    let db: Arc<dyn SqlDatabase> = DatabaseContainer::with_database(database.clone()).build().resolve();
    (database, Arc::new(SqlJobResults::new(db)))
}

async fn read(results: &Arc<dyn JobResults>, job: Uuid, meta: &ResultMeta) -> Vec<u8> {
    let chunks: Vec<bytes::Bytes> = stream(results.clone(), job, meta).try_collect().await.expect("read");
    chunks.concat()
}

#[tokio::test]
async fn a_sealed_attempts_chunks_are_the_result_and_expire_with_it_on_every_backend() {
    for test_db in TestDatabase::all().await {
        let backend = test_db.backend();
        let (database, results) = open(&test_db).await;
        let (job, now) = (Uuid::now_v7(), 1_000_000_i64);
        // Attempt 1 wrote half a document and was taken over; attempt 2 writes it whole.
        results.write_chunk(job, 1, 0, b"stale", now + 500).await.expect("write");
        let binary: Vec<u8> = (0..=255).collect();
        results.write_chunk(job, 2, 0, b"id,title\n", now + 500).await.expect("write");
        results.write_chunk(job, 2, 1, &binary, now + 500).await.expect("write");
        assert_eq!(results.meta(job, now).await.expect("meta"), None, "{backend}: nothing is served unsealed");
        assert!(results.seal(job, 2, "text/csv", 265, now + 10_000).await.expect("seal"), "{backend}");
        assert!(!results.seal(job, 1, "text/csv", 5, now + 10_000).await.expect("seal"), "{backend}: fenced");
        let meta = results.meta(job, now).await.expect("meta").expect("sealed");
        assert_eq!((meta.lease, meta.content_type.as_str(), meta.size), (2, "text/csv", 265), "{backend}");
        let mut want = b"id,title\n".to_vec();
        want.extend_from_slice(&binary);
        assert_eq!(read(&results, job, &meta).await, want, "{backend}: bytes round-trip in order");
        assert_eq!(results.chunk(job, 1, 0).await.expect("chunk"), None, "{backend}: the older attempt's are gone");
        assert_eq!(results.usage().await.expect("usage"), ResultUsage { results: 1, bytes: 265 }, "{backend}");

        // A failed attempt's chunks are dropped; everything goes at its expiry.
        let other = Uuid::now_v7();
        results.write_chunk(other, 1, 0, b"partial", now + 500).await.expect("write");
        results.discard(other, 1).await;
        assert_eq!(results.chunk(other, 1, 0).await.expect("chunk"), None, "{backend}");
        results.write_chunk(other, 2, 0, b"orphan", now + 500).await.expect("write");
        assert_eq!(results.sweep(now + 1_000).await.expect("sweep"), 1, "{backend}: the orphan chunk expired");
        assert!(results.meta(job, now + 1_000).await.expect("meta").is_some(), "{backend}: sealed ones live on");
        assert_eq!(results.sweep(now + 10_000).await.expect("sweep"), 3, "{backend}: two chunks and the result");
        assert_eq!(results.meta(job, now + 10_000).await.expect("meta"), None, "{backend}");
        assert_eq!(results.usage().await.expect("usage"), ResultUsage::default(), "{backend}");
        database.close().await;
    }
}
