//! The contract on both adapters (Redis on a real server and a real cluster), and the TTLs.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;

use app_core::testing::RedisServer;
use app_redis::testing::{redis as client, redis_cluster as cluster_client};
use uuid::Uuid;

use super::{contract::RETENTION, *};

async fn memory() -> Arc<dyn JobStore> {
    Arc::new(MemoryJobStore::new(RETENTION))
}

async fn redis() -> Arc<dyn JobStore> {
    Arc::new(RedisJobStore::new(client().await, RETENTION))
}

async fn redis_cluster() -> Arc<dyn JobStore> {
    Arc::new(RedisJobStore::new(cluster_client().await, RETENTION))
}

app_core::contract_tests! {
    suite = contract,
    adapters = { memory => memory, redis => redis, redis_cluster => redis_cluster },
    tests = [
        a_job_is_queued_run_and_completed_with_its_result,
        owners_list_their_jobs_newest_first,
        a_failed_attempt_is_retried_after_its_delay_then_fails_for_good,
        a_stalled_attempt_is_reclaimed_and_its_old_worker_is_fenced_off,
        heartbeats_keep_an_attempt_from_being_reclaimed,
        a_reclaimed_job_out_of_attempts_fails_for_good,
        cancellation_stops_pending_jobs_at_once_and_asks_running_ones,
        a_released_attempt_is_queued_again_and_does_not_count,
        concurrent_workers_each_get_distinct_jobs,
        only_the_newest_finished_jobs_are_kept,
        pausing_and_the_rate_limit_are_shared_state,
        tickets_open_once_then_serve_reconnections_and_expire,
        a_paused_queue_starts_nothing_until_resumed,
        a_paused_worker_is_woken_by_the_resume,
        a_completion_starts_the_workers_next_job_in_the_same_call,
        a_requested_cancellation_outlives_retries_and_hand_backs,
        subscribers_see_every_state_change_in_order,
        an_owner_has_at_most_max_open_pending_and_active_jobs_per_queue,
    ],
}

#[tokio::test]
async fn every_job_key_carries_a_ttl() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisJobStore::new(redis.clone(), RETENTION);
    let (owner, id) = (Uuid::now_v7(), Uuid::now_v7());
    let queue = "ttl";
    let job = NewJob {
        id,
        owner,
        kind: "ttl.kind".into(),
        queue: queue.into(),
        params: "{}".into(),
        max_attempts: 2,
        max_open: 0,
    };
    store.enqueue(&job).await.expect("enqueue").expect("admitted");
    let d = store.fetch(queue, "w", Duration::from_millis(200)).await.expect("fetch").expect("job");
    store.complete(queue, id, d.lease(), Some("text/plain")).await.expect("complete");
    store.set_paused(queue, true).await.expect("pause");
    store.take_rate(queue, 5, Duration::from_secs(60)).await.expect("rate");
    store.put_ticket("h", "v", Duration::from_secs(60)).await.expect("ticket");
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    loop {
        let reply = server.command(&["SCAN", &cursor, "MATCH", &format!("{}*", redis.prefix()), "COUNT", "1000"]);
        let mut lines = reply.lines().filter(|l| !l.starts_with('*') && !l.starts_with('$'));
        cursor = lines.next().unwrap_or("0").to_owned();
        keys.extend(lines.map(str::to_owned));
        if cursor == "0" {
            break;
        }
    }
    assert!(keys.len() >= 7, "{keys:?}");
    for key in keys {
        let ttl = server.pttl(&key);
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn jobs_queued_before_a_restart_survive_it_on_an_aof_server() {
    // The restart keeps the server's data directory, so the AOF brings the queue back.
    let server = RedisServer::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let redis = app_redis::Redis::connect(&app_redis::testing::config(server.url())).expect("client");
    assert!(redis.wait_connected(Duration::from_secs(5)).await);
    let store = RedisJobStore::new(redis.clone(), RETENTION);
    let job = NewJob {
        id: Uuid::now_v7(),
        owner: Uuid::now_v7(),
        kind: "durable.kind".into(),
        queue: "durable".into(),
        params: "{}".into(),
        max_attempts: 1,
        max_open: 0,
    };
    store.enqueue(&job).await.expect("enqueue").expect("admitted");
    server.restart();
    assert!(redis.wait_connected(Duration::from_secs(10)).await, "reconnects");
    let delivery = app_core::testing::eventually(Duration::from_secs(10), || async {
        matches!(store.fetch("durable", "w", Duration::from_millis(100)).await, Ok(Some(_)))
    })
    .await;
    assert!(delivery, "the job queued before the restart is delivered after it");
}

#[tokio::test]
async fn on_one_node_a_change_is_published_only_while_someone_watches_the_job() {
    let server = RedisServer::start();
    let redis = app_redis::Redis::connect(&app_redis::testing::config(server.url())).expect("client");
    assert!(redis.wait_connected(Duration::from_secs(5)).await);
    let store = RedisJobStore::new(redis.clone(), RETENTION);
    let publishes = || {
        let stats = server.command(&["INFO", "commandstats"]);
        stats
            .lines()
            .find(|l| l.starts_with("cmdstat_publish:"))
            .and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let job = |id| NewJob {
        id,
        owner: Uuid::now_v7(),
        kind: "quiet.kind".into(),
        queue: "quiet".into(),
        params: "{}".into(),
        max_attempts: 1,
        max_open: 0,
    };
    let run = |id| {
        let store = &store;
        async move {
            store.enqueue(&job(id)).await.expect("enqueue").expect("admitted");
            let d = store.fetch("quiet", "w", Duration::from_millis(500)).await.expect("fetch").expect("job");
            store.complete("quiet", id, d.lease(), None).await.expect("complete");
        }
    };
    run(Uuid::now_v7()).await;
    assert_eq!(publishes(), 0, "nobody watched: nothing was published");

    let watched = Uuid::now_v7();
    let mut events = store.subscribe(watched).await.expect("subscribe");
    run(watched).await;
    assert!(publishes() >= 2, "the start and the completion were published");
    let mut seen = Vec::new();
    while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await {
        seen.push(record.status);
        if record.status.is_terminal() {
            break;
        }
    }
    assert_eq!(seen.last().map(|s| s.is_terminal()), Some(true), "the watcher saw the job end: {seen:?}");
}

#[tokio::test]
async fn a_finished_job_leaves_its_owners_open_jobs_at_once() {
    // (Admission also drops finished members lazily once an owner reaches the cap; this is the
    // eager removal every ending does.)
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisJobStore::new(redis.clone(), RETENTION);
    let (owner, queue) = (Uuid::now_v7(), "open");
    let open = redis.key(&format!("q:{{{queue}}}:open:{owner}"));
    let new = || NewJob {
        id: Uuid::now_v7(),
        owner,
        kind: "open.kind".into(),
        queue: queue.into(),
        params: "{}".into(),
        max_attempts: 1,
        max_open: 0,
    };
    let (first, second) = (new(), new());
    for job in [&first, &second] {
        store.enqueue(job).await.expect("enqueue").expect("admitted");
    }
    let members = || server.command(&["ZRANGE", &open, "0", "-1"]);
    assert!(members().contains(&first.id.to_string()) && members().contains(&second.id.to_string()));
    let d = store.fetch(queue, "w", Duration::from_millis(200)).await.expect("fetch").expect("job");
    let (_, next) = store.complete_and_next(queue, first.id, d.lease(), None, "w").await.expect("complete");
    let next = next.expect("the second job, started");
    assert!(!members().contains(&first.id.to_string()), "the completed job left: {}", members());
    assert!(members().contains(&second.id.to_string()), "the running one stays");
    store.complete(queue, second.id, next.lease(), None).await.expect("complete");
    assert!(!members().contains(&second.id.to_string()), "{}", members());
}
