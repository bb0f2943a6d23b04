//! The contract every [`JobStore`] adapter passes.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use uuid::Uuid;

use super::*;
use crate::JobStatus;

/// The retention every adapter under test is built with.
pub const RETENTION: Retention = Retention { ttl: Duration::from_secs(60), keep_completed: 2, keep_failed: 10 };

const BLOCK: Duration = Duration::from_millis(200);

fn queue() -> String {
    format!("test{}", &app_core::testing::unique_prefix()[1..9])
}

fn job(queue: &str, owner: Uuid) -> NewJob {
    NewJob {
        id: Uuid::now_v7(),
        owner,
        kind: format!("{queue}.kind"),
        queue: queue.to_owned(),
        params: r#"{"n":1}"#.into(),
        max_attempts: 3,
        max_open: 0,
    }
}

async fn fetched(store: &Arc<dyn JobStore>, queue: &str) -> Delivery {
    store.fetch(queue, "w1", BLOCK).await.expect("fetch").expect("a job is waiting")
}

pub async fn a_job_is_queued_run_and_completed_with_its_result(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let new = job(&q, owner);
    let record = store.enqueue(&new).await.expect("enqueue").expect("admitted");
    assert_eq!((record.status, record.attempts, record.progress), (JobStatus::Pending, 0, 0));
    assert_eq!(store.stats(&q).await.expect("stats").waiting, 1);
    let delivery = fetched(&store, &q).await;
    assert_eq!((delivery.job.id, delivery.job.status, delivery.lease()), (new.id, JobStatus::Active, 1));
    assert_eq!(delivery.params, new.params);
    assert!(store.fetch(&q, "w2", BLOCK).await.expect("fetch").is_none(), "delivered once");
    let stats = store.stats(&q).await.expect("stats");
    assert_eq!((stats.waiting, stats.active), (0, 1));
    assert_eq!(store.progress(&q, new.id, 1, 40).await.expect("progress"), Held::Yes { cancel_requested: false });
    assert_eq!(store.get(&q, new.id).await.expect("get").expect("found").progress, 40);
    let done = store.complete(&q, new.id, 1, Some("text/csv")).await.expect("complete");
    assert_eq!(done, Held::Yes { cancel_requested: false });
    assert_eq!(store.complete(&q, new.id, 1, None).await.expect("again"), done, "a retried completion is harmless");
    let record = store.get(&q, new.id).await.expect("get").expect("kept");
    assert_eq!(
        (record.status, record.progress, record.result_type.as_deref()),
        (JobStatus::Completed, 100, Some("text/csv"))
    );
    assert!(record.finished_ms.is_some());
    let stats = store.stats(&q).await.expect("stats");
    assert_eq!((stats.waiting, stats.active, stats.completed), (0, 0, 1));
}

pub async fn owners_list_their_jobs_newest_first(store: Arc<dyn JobStore>) {
    let (q, owner, other) = (queue(), Uuid::now_v7(), Uuid::now_v7());
    let first = job(&q, owner);
    store.enqueue(&first).await.expect("enqueue").expect("admitted");
    let second = job(&q, owner);
    store.enqueue(&second).await.expect("enqueue").expect("admitted");
    store.enqueue(&job(&q, other)).await.expect("enqueue").expect("admitted");
    let listed: Vec<Uuid> = store.list(owner, &[q.as_str()], 100).await.expect("list").iter().map(|r| r.id).collect();
    assert_eq!(listed, [second.id, first.id]);
    assert_eq!(store.list(owner, &["elsewhere"], 100).await.expect("list").len(), 0, "only the queues asked for");
}

pub async fn a_failed_attempt_is_retried_after_its_delay_then_fails_for_good(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let new = NewJob { max_attempts: 2, ..job(&q, owner) };
    store.enqueue(&new).await.expect("enqueue").expect("admitted");
    let first = fetched(&store, &q).await;
    let retry = Some(Duration::from_millis(300));
    assert_eq!(
        store.fail(&q, new.id, first.lease(), "boom", retry).await.expect("fail"),
        Held::Yes { cancel_requested: false }
    );
    let record = store.get(&q, new.id).await.expect("get").expect("found");
    assert_eq!((record.status, record.error.as_deref()), (JobStatus::Pending, Some("boom")));
    assert_eq!(store.stats(&q).await.expect("stats").delayed, 1);
    assert_eq!(store.promote(&q).await.expect("promote"), 0, "not due yet");
    assert!(store.fetch(&q, "w1", BLOCK).await.expect("fetch").is_none());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(store.promote(&q).await.expect("promote"), 1);
    let second = fetched(&store, &q).await;
    assert_eq!(second.lease(), 2);
    store.fail(&q, new.id, 2, "boom again", None).await.expect("fail");
    let record = store.get(&q, new.id).await.expect("get").expect("found");
    assert_eq!((record.status, record.attempts, record.error.as_deref()), (JobStatus::Failed, 2, Some("boom again")));
    assert_eq!(store.stats(&q).await.expect("stats").failed, 1);
}

pub async fn a_stalled_attempt_is_reclaimed_and_its_old_worker_is_fenced_off(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let new = job(&q, owner);
    store.enqueue(&new).await.expect("enqueue").expect("admitted");
    let old = fetched(&store, &q).await;
    assert!(
        store.reclaim(&q, "w2", Duration::from_secs(60), 10).await.expect("reclaim").is_empty(),
        "not idle long enough"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let reclaimed = store.reclaim(&q, "w2", Duration::from_millis(200), 10).await.expect("reclaim");
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].lease(), 2);
    assert_eq!(store.progress(&q, new.id, old.lease(), 90).await.expect("progress"), Held::Lost);
    assert_eq!(store.heartbeat(&q, new.id, old.lease(), "w1").await.expect("heartbeat"), Held::Lost);
    assert_eq!(store.complete(&q, new.id, old.lease(), None).await.expect("complete"), Held::Lost, "fenced off");
    assert_eq!(store.get(&q, new.id).await.expect("get").expect("found").status, JobStatus::Active);
    assert_eq!(store.complete(&q, new.id, 2, None).await.expect("complete"), Held::Yes { cancel_requested: false });
}

pub async fn heartbeats_keep_an_attempt_from_being_reclaimed(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let new = job(&q, owner);
    store.enqueue(&new).await.expect("enqueue").expect("admitted");
    let delivery = fetched(&store, &q).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(matches!(store.heartbeat(&q, new.id, delivery.lease(), "w1").await.expect("beat"), Held::Yes { .. }));
    }
    assert!(store.reclaim(&q, "w2", Duration::from_millis(300), 10).await.expect("reclaim").is_empty());
}

pub async fn a_reclaimed_job_out_of_attempts_fails_for_good(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let new = NewJob { max_attempts: 1, ..job(&q, owner) };
    store.enqueue(&new).await.expect("enqueue").expect("admitted");
    fetched(&store, &q).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(store.reclaim(&q, "w2", Duration::from_millis(100), 10).await.expect("reclaim").is_empty());
    let record = store.get(&q, new.id).await.expect("get").expect("found");
    assert_eq!(record.status, JobStatus::Failed);
    assert!(record.error.is_some());
}

pub async fn cancellation_stops_pending_jobs_at_once_and_asks_running_ones(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let waiting = job(&q, owner);
    store.enqueue(&waiting).await.expect("enqueue").expect("admitted");
    assert!(
        matches!(store.cancel(&q, waiting.id).await.expect("cancel"), CancelOutcome::Cancelled(r) if r.status == JobStatus::Cancelled)
    );
    assert!(store.fetch(&q, "w1", BLOCK).await.expect("fetch").is_none(), "a cancelled job is never run");
    let running = job(&q, owner);
    store.enqueue(&running).await.expect("enqueue").expect("admitted");
    let delivery = fetched(&store, &q).await;
    assert!(matches!(store.cancel(&q, running.id).await.expect("cancel"), CancelOutcome::Requested(_)));
    assert_eq!(
        store.heartbeat(&q, running.id, delivery.lease(), "w1").await.expect("beat"),
        Held::Yes { cancel_requested: true }
    );
    store.cancelled(&q, running.id, delivery.lease()).await.expect("cancelled");
    assert_eq!(store.get(&q, running.id).await.expect("get").expect("found").status, JobStatus::Cancelled);
    assert!(matches!(store.cancel(&q, running.id).await.expect("cancel"), CancelOutcome::Finished(_)));
    assert!(matches!(store.cancel(&q, Uuid::now_v7()).await.expect("cancel"), CancelOutcome::NotFound));
}

pub async fn a_released_attempt_is_queued_again_and_does_not_count(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let new = job(&q, owner);
    store.enqueue(&new).await.expect("enqueue").expect("admitted");
    let delivery = fetched(&store, &q).await;
    assert!(matches!(store.release(&q, new.id, delivery.lease()).await.expect("release"), Held::Yes { .. }));
    let record = store.get(&q, new.id).await.expect("get").expect("found");
    assert_eq!((record.status, record.attempts), (JobStatus::Pending, 0));
    let again = fetched(&store, &q).await;
    assert_eq!((again.job.attempts, again.lease()), (1, 2), "taken again at once, under a new lease");
    // The first worker retrying its hand-back (a lost reply) finds the lease gone.
    assert_eq!(store.release(&q, new.id, delivery.lease()).await.expect("release"), Held::Lost);
    assert_eq!(store.get(&q, new.id).await.expect("get").expect("found").status, JobStatus::Active);
}

pub async fn a_requested_cancellation_outlives_retries_and_hand_backs(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let failing = job(&q, owner);
    store.enqueue(&failing).await.expect("enqueue").expect("admitted");
    let d = fetched(&store, &q).await;
    assert!(matches!(store.cancel(&q, failing.id).await.expect("cancel"), CancelOutcome::Requested(_)));
    store.fail(&q, failing.id, d.lease(), "boom", Some(Duration::from_millis(1))).await.expect("fail");
    assert_eq!(
        store.get(&q, failing.id).await.expect("get").expect("found").status,
        JobStatus::Cancelled,
        "not retried"
    );

    let handed_back = job(&q, owner);
    store.enqueue(&handed_back).await.expect("enqueue").expect("admitted");
    let d = fetched(&store, &q).await;
    assert!(matches!(store.cancel(&q, handed_back.id).await.expect("cancel"), CancelOutcome::Requested(_)));
    store.release(&q, handed_back.id, d.lease()).await.expect("release");
    assert_eq!(store.get(&q, handed_back.id).await.expect("get").expect("found").status, JobStatus::Cancelled);
    assert!(store.fetch(&q, "w1", BLOCK).await.expect("fetch").is_none(), "neither runs again");
}

pub async fn concurrent_workers_each_get_distinct_jobs(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let mut ids = Vec::new();
    for _ in 0..20 {
        let new = job(&q, owner);
        ids.push(new.id);
        store.enqueue(&new).await.expect("enqueue").expect("admitted");
    }
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (store, q) = (store.clone(), q.clone());
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(d) = store.fetch(&q, &format!("w{w}"), BLOCK).await.expect("fetch") {
                    got.push(d.job.id);
                }
                got
            })
        })
        .collect();
    let mut seen = Vec::new();
    for w in workers {
        seen.extend(w.await.expect("worker"));
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "every job delivered exactly once");
}

pub async fn only_the_newest_finished_jobs_are_kept(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let new = job(&q, owner);
        store.enqueue(&new).await.expect("enqueue").expect("admitted");
        let d = fetched(&store, &q).await;
        store.complete(&q, new.id, d.lease(), Some("application/json")).await.expect("complete");
        ids.push(new.id);
    }
    assert_eq!(store.get(&q, ids[0]).await.expect("get"), None, "keep_completed = 2 drops the oldest");
    assert!(store.get(&q, ids[2]).await.expect("get").is_some());
    assert_eq!(store.stats(&q).await.expect("stats").completed, 2);
}

pub async fn pausing_and_the_rate_limit_are_shared_state(store: Arc<dyn JobStore>) {
    let q = queue();
    assert!(!store.is_paused(&q).await.expect("paused"));
    store.set_paused(&q, true).await.expect("pause");
    assert!(store.is_paused(&q).await.expect("paused") && store.stats(&q).await.expect("stats").paused);
    store.set_paused(&q, false).await.expect("resume");
    assert!(!store.is_paused(&q).await.expect("paused"));
    let per = Duration::from_millis(400);
    assert_eq!(store.take_rate(&q, 2, per).await.expect("rate"), None);
    assert_eq!(store.take_rate(&q, 2, per).await.expect("rate"), None);
    let wait = store.take_rate(&q, 2, per).await.expect("rate").expect("limited");
    assert!(wait <= per, "{wait:?}");
    store.refund_rate(&q, per).await.expect("refund");
    assert_eq!(store.take_rate(&q, 2, per).await.expect("rate"), None, "a refunded slot is free again");
    tokio::time::sleep(per + Duration::from_millis(50)).await;
    assert_eq!(store.take_rate(&q, 2, per).await.expect("rate"), None, "a new window");
}

pub async fn a_paused_queue_starts_nothing_until_resumed(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    store.set_paused(&q, true).await.expect("pause");
    let new = job(&q, owner);
    store.enqueue(&new).await.expect("enqueue").expect("admitted");
    assert!(store.fetch(&q, "w1", BLOCK).await.expect("fetch").is_none(), "paused");
    let record = store.get(&q, new.id).await.expect("get").expect("found");
    assert_eq!((record.status, record.attempts), (JobStatus::Pending, 0), "untouched");
    store.set_paused(&q, false).await.expect("resume");
    assert_eq!(fetched(&store, &q).await.job.id, new.id);
}

pub async fn a_paused_worker_is_woken_by_the_resume(store: Arc<dyn JobStore>) {
    let q = queue();
    store.set_paused(&q, true).await.expect("pause");
    let started = tokio::time::Instant::now();
    // Waits its whole time while the queue stays paused.
    store.wait_resumed(&q, Duration::from_millis(300)).await.expect("wait");
    assert!(started.elapsed() >= Duration::from_millis(300), "still paused: waited it out");
    let waiting = tokio::spawn({
        let (store, q) = (store.clone(), q.clone());
        async move {
            store.wait_resumed(&q, Duration::from_secs(60)).await.expect("wait");
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "waits while paused");
    store.set_paused(&q, false).await.expect("resume");
    tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("woken by the resume, not the 60 s")
        .expect("task");
    // Not paused: returns at once.
    tokio::time::timeout(Duration::from_secs(20), store.wait_resumed(&q, Duration::from_secs(60)))
        .await
        .expect("not paused")
        .expect("wait");
}

pub async fn a_completion_starts_the_workers_next_job_in_the_same_call(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let (first, second, third) = (job(&q, owner), job(&q, owner), job(&q, owner));
    for new in [&first, &second, &third] {
        store.enqueue(new).await.expect("enqueue").expect("admitted");
    }
    let delivery = fetched(&store, &q).await;
    assert_eq!(delivery.job.id, first.id);
    let (held, next) =
        store.complete_and_next(&q, first.id, delivery.lease(), Some("text/csv"), "w1").await.expect("complete");
    assert_eq!(held, Held::Yes { cancel_requested: false });
    let next = next.expect("the next job, started");
    assert_eq!((next.job.id, next.job.status, next.lease()), (second.id, JobStatus::Active, 1));
    assert_eq!(next.params, second.params);
    let record = store.get(&q, first.id).await.expect("get").expect("kept");
    assert_eq!((record.status, record.result_type.as_deref()), (JobStatus::Completed, Some("text/csv")));
    let stats = store.stats(&q).await.expect("stats");
    assert_eq!((stats.waiting, stats.active, stats.completed), (1, 1, 1));
    // A cancelled job in the way is skipped.
    assert!(matches!(store.cancel(&q, third.id).await.expect("cancel"), CancelOutcome::Cancelled(_)));
    let (held, after) = store.complete_and_next(&q, second.id, 1, None, "w1").await.expect("complete");
    assert_eq!((held, after.is_none()), (Held::Yes { cancel_requested: false }, true), "nothing left to start");
    // Each completion freed its place among the owner's open jobs.
    let capped = NewJob { max_open: 1, ..job(&q, owner) };
    store.enqueue(&capped).await.expect("enqueue").expect("no open job left");
    assert!(matches!(store.cancel(&q, capped.id).await.expect("cancel"), CancelOutcome::Cancelled(_)));
    // A fenced-off completion still reports Lost; a paused queue starts nothing.
    let fourth = job(&q, owner);
    store.enqueue(&fourth).await.expect("enqueue").expect("admitted");
    store.set_paused(&q, true).await.expect("pause");
    let (held, none) = store.complete_and_next(&q, fourth.id, 7, None, "w1").await.expect("complete");
    assert_eq!((held, none.is_none()), (Held::Lost, true));
    let record = store.get(&q, fourth.id).await.expect("get").expect("found");
    assert_eq!((record.status, record.attempts), (JobStatus::Pending, 0), "a paused queue starts nothing");
    store.set_paused(&q, false).await.expect("resume");
    assert_eq!(fetched(&store, &q).await.job.id, fourth.id);
}

pub async fn tickets_open_once_then_serve_reconnections_and_expire(store: Arc<dyn JobStore>) {
    let hash = app_core::testing::unique_prefix();
    let keep = Duration::from_secs(60);
    store.put_ticket(&hash, "user|job", Duration::from_secs(60)).await.expect("put");
    assert_eq!(store.use_ticket(&hash, false, keep).await.expect("use").as_deref(), Some("user|job"));
    assert_eq!(store.use_ticket(&hash, false, keep).await.expect("use"), None, "opens one stream");
    assert_eq!(store.use_ticket(&hash, true, keep).await.expect("use").as_deref(), Some("user|job"), "a reconnection");
    assert_eq!(store.use_ticket(&hash, true, keep).await.expect("use").as_deref(), Some("user|job"), "and another");
    let never = app_core::testing::unique_prefix();
    assert_eq!(store.use_ticket(&never, true, keep).await.expect("use"), None, "never issued");

    let short = app_core::testing::unique_prefix();
    store.put_ticket(&short, "v", Duration::from_millis(100)).await.expect("put");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.use_ticket(&short, false, keep).await.expect("use"), None, "expired unused");
    store.put_ticket(&short, "v", Duration::from_secs(60)).await.expect("put");
    assert!(store.use_ticket(&short, false, Duration::from_millis(100)).await.expect("use").is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.use_ticket(&short, true, keep).await.expect("use"), None, "its reconnection window ended");
}

pub async fn subscribers_see_every_state_change_in_order(store: Arc<dyn JobStore>) {
    let (q, owner) = (queue(), Uuid::now_v7());
    let new = job(&q, owner);
    let mut events = store.subscribe(new.id).await.expect("subscribe");
    store.enqueue(&new).await.expect("enqueue").expect("admitted");
    let d = fetched(&store, &q).await;
    store.progress(&q, new.id, d.lease(), 50).await.expect("progress");
    store.complete(&q, new.id, d.lease(), None).await.expect("complete");
    let seen = changes(&mut events).await;
    assert_eq!(seen, [(1, JobStatus::Active, 0), (2, JobStatus::Active, 50), (3, JobStatus::Completed, 100)]);

    // A completion that starts the worker's next job counts and publishes both changes.
    let (second, third) = (job(&q, owner), job(&q, owner));
    let mut second_events = store.subscribe(second.id).await.expect("subscribe");
    let mut third_events = store.subscribe(third.id).await.expect("subscribe");
    for new in [&second, &third] {
        store.enqueue(new).await.expect("enqueue").expect("admitted");
    }
    let d = fetched(&store, &q).await;
    assert_eq!((d.job.id, d.job.seq), (second.id, 1));
    let (_, next) = store.complete_and_next(&q, second.id, d.lease(), None, "w1").await.expect("complete");
    let next = next.expect("the next job, started");
    assert_eq!((next.job.id, next.job.seq), (third.id, 1), "the started record is the one published");
    store.complete_and_next(&q, third.id, next.lease(), None, "w1").await.expect("complete");
    for events in [&mut second_events, &mut third_events] {
        assert_eq!(changes(events).await, [(1, JobStatus::Active, 0), (2, JobStatus::Completed, 100)]);
    }
}

/// The (seq, status, progress) of each change a watcher is told of, up to the job's end (or two
/// seconds of silence).
async fn changes(events: &mut JobEvents) -> Vec<(u64, JobStatus, u8)> {
    let mut seen = Vec::new();
    while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(2), events.next()).await {
        let terminal = record.status.is_terminal();
        seen.push((record.seq, record.status, record.progress));
        if terminal {
            break;
        }
    }
    seen
}

pub async fn an_owner_has_at_most_max_open_pending_and_active_jobs_per_queue(store: Arc<dyn JobStore>) {
    let (q, owner, other) = (queue(), Uuid::now_v7(), Uuid::now_v7());
    let capped = |owner| NewJob { max_open: 2, ..job(&q, owner) };
    let first = capped(owner);
    store.enqueue(&first).await.expect("enqueue").expect("admitted");
    let second = capped(owner);
    store.enqueue(&second).await.expect("enqueue").expect("admitted");
    let refused = capped(owner);
    assert_eq!(store.enqueue(&refused).await.expect("enqueue"), None, "a third open job is refused");
    assert!(store.get(&q, refused.id).await.expect("get").is_none(), "and nothing of it was written");
    assert_eq!(store.stats(&q).await.expect("stats").waiting, 2);
    store.enqueue(&capped(other)).await.expect("enqueue").expect("another owner is unaffected");
    assert!(store.enqueue(&NewJob { queue: queue(), ..capped(owner) }).await.expect("enqueue").is_some(), "per queue");

    // Running still counts; finishing (completed, failed for good, cancelled) frees a place.
    let running = fetched(&store, &q).await;
    assert_eq!(store.enqueue(&capped(owner)).await.expect("enqueue"), None, "an active job is open");
    store.complete(&q, running.job.id, running.lease(), None).await.expect("complete");
    let third = capped(owner);
    store.enqueue(&third).await.expect("enqueue").expect("a completion frees a place");
    assert!(matches!(store.cancel(&q, third.id).await.expect("cancel"), CancelOutcome::Cancelled(_)));
    store.enqueue(&capped(owner)).await.expect("enqueue").expect("a cancellation frees a place");
}
