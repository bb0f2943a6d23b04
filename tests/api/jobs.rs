//! Jobs over HTTP against real Redis: the life of a job, results, SSE with bearer and tickets,
//! retries and dead letters, cancellation, ownership, a worker process killed mid-job, Redis
//! restarts, admin queues, and bad input.

use std::time::Duration;

use app_core::testing::{RedisServer, eventually};
use serde_json::{Value, json};

use crate::support::{
    Backend, TestApp, app, assert_problem,
    jobs::{Flaky, read_events},
    spawn_app,
};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn jobs_app() -> TestApp {
    app().with_test_jobs(Flaky::default()).spawn().await
}

#[tokio::test]
async fn an_export_runs_to_completion_and_its_result_matches_the_library() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    for title in ["One", "Two, with a comma", "=cmd"] {
        app.song(&tokens.access, title).await;
    }
    let resp = app.submit_job(&tokens.access, "library.export", json!({"format": "json"})).await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
    let job: Value = resp.json().await.expect("json");
    assert_eq!(location, format!("/api/v1/jobs/{}", id(&job)));
    assert_eq!(
        (job["status"].as_str(), job["type"].as_str(), job["progress"].as_u64()),
        (Some("pending"), Some("library.export"), Some(0))
    );
    assert_eq!(job["maxAttempts"], 3);

    let done = app.finished_job(&tokens.access, &id(&job)).await;
    assert_eq!(
        (done["status"].as_str(), done["progress"].as_u64(), done["attempts"].as_u64()),
        (Some("completed"), Some(100), Some(1))
    );
    assert!(done["finishedAt"].as_str().is_some() && done["startedAt"].as_str().is_some());
    let resp = app.job_result(&tokens.access, &id(&job)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers()["content-disposition"].to_str().expect("ascii").starts_with("attachment"));
    let exported: Vec<Value> = resp.json().await.expect("json");
    let library = app.page(&tokens.access, "pageSize=100").await;
    let mut want: Vec<&Value> = library["items"].as_array().expect("items").iter().collect();
    want.sort_by_key(|i| i["id"].as_str().map(str::to_owned));
    assert_eq!(exported.iter().collect::<Vec<_>>(), want, "the export is the library as the API shows it");

    let csv_job = app.job(&tokens.access, "library.export", json!({"format": "csv"})).await;
    app.finished_job(&tokens.access, &id(&csv_job)).await;
    let resp = app.job_result(&tokens.access, &id(&csv_job)).await;
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let text = resp.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], r#""id","type","title","artist","album","durationSeconds","tags","createdAt","updatedAt""#,
        "every field quoted"
    );
    assert_eq!(lines.len(), 4);
    assert!(text.contains(r#","Two, with a comma","#), "quoted: {text}");
    assert!(text.contains(r#","'=cmd","#), "formula defused: {text}");
}

#[tokio::test]
async fn an_import_adds_the_valid_rows_and_reports_the_others_by_index() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    // What the schema says is checked at submission, naming the item and its field.
    let long = "x".repeat(201);
    let items = json!([{"type": "song", "title": "Good one"}, {"type": "movie", "title": "x"}, {"type": "song", "title": long}]);
    let problem = assert_problem(
        app.submit_job(&tokens.access, "library.import", json!({"items": items})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    let fields: Vec<&str> =
        problem["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["params.items[1].type", "params.items[2].title"]);
    assert!(!problem.to_string().contains(&long), "values are not echoed");

    // What only the item's own rules refuse (a blank title, control characters) is reported
    // by index when the job runs; the rest is added.
    let items = json!([
        {"type": "song", "title": "Good one"},
        {"type": "song", "title": "   "},
        {"type": "song", "title": "a\u{0}b"},
        {"type": "song", "title": "x", "artist": "tab\there"},
        {"type": "album", "title": "Good two", "tags": ["a"]}
    ]);
    let job = app.job(&tokens.access, "library.import", json!({"items": items})).await;
    let done = app.finished_job(&tokens.access, &id(&job)).await;
    assert_eq!(done["status"], "completed");
    let report: Value = app.job_result(&tokens.access, &id(&job)).await.json().await.expect("json");
    assert_eq!(report["imported"], 2);
    let failed: Vec<(u64, String)> = report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| (f["index"].as_u64().expect("index"), f["code"].as_str().expect("code").to_owned()))
        .collect();
    assert_eq!(
        failed,
        [(1, "VALIDATION_FAILED".into()), (2, "VALIDATION_FAILED".into()), (3, "VALIDATION_FAILED".into())]
    );
    let page = app.page(&tokens.access, "").await;
    assert_eq!(page["total"], 2, "the page cache was invalidated by the import");
}

#[tokio::test]
async fn bad_submissions_are_a_400_and_queue_nothing() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let many: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    for (kind, params, field) in [
        ("library.nope", json!({}), "type"),
        ("library.import", json!({"items": "x"}), "params.items"),
        ("library.import", json!({"items": []}), "params.items"),
        ("library.import", json!({"items": many}), "params.items"),
        ("library.export", json!({"format": "xml"}), "params.format"),
        ("library.export", json!(null), "params"),
        ("library.export", json!({}), "params.format"),
    ] {
        let problem =
            assert_problem(app.submit_job(&tokens.access, kind, params).await, 400, "VALIDATION_FAILED").await;
        assert_eq!(problem["errors"][0]["field"], field, "{kind}");
    }
    let resp =
        app.authed(reqwest::Method::POST, "/api/v1/jobs", &tokens.access).json(&json!({"params": {}})).send().await;
    let problem = assert_problem(resp.expect("sent"), 400, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"][0]["field"], "type");
    let resp = app
        .authed(reqwest::Method::POST, "/api/v1/jobs", &tokens.access)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await;
    assert_problem(resp.expect("sent"), 400, "MALFORMED_REQUEST").await;
    let list: Value = app.jobs_page(&tokens.access, "").await;
    assert_eq!(list["total"], 0);
    assert_problem(app.list_jobs(&tokens.access, "status=done").await, 400, "VALIDATION_FAILED").await;
    assert_problem(app.get_job(&tokens.access, "not-a-uuid").await, 400, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn jobs_are_listed_by_status_and_another_users_job_is_a_404() {
    let app = jobs_app().await;
    let (_, owner) = app.user().await;
    let (_, other) = app.user().await;
    let first = app.job(&owner.access, "test.steps", json!({"steps": 1, "ms": 1})).await;
    app.finished_job(&owner.access, &id(&first)).await;
    let second = app.job(&owner.access, "test.steps", json!({"steps": 1, "ms": 1})).await;
    app.finished_job(&owner.access, &id(&second)).await;
    let page: Value = app.jobs_page(&owner.access, "status=completed&pageSize=1").await;
    assert_eq!(
        (page["total"].as_u64(), page["items"][0]["id"].as_str()),
        (Some(2), Some(id(&second).as_str())),
        "newest first"
    );
    let none: Value = app.jobs_page(&owner.access, "status=failed").await;
    assert_eq!(none["total"], 0);
    let theirs: Value = app.jobs_page(&other.access, "").await;
    assert_eq!(theirs["total"], 0);
    let job = id(&first);
    assert_problem(app.get_job(&other.access, &job).await, 404, "NOT_FOUND").await;
    assert_problem(app.job_result(&other.access, &job).await, 404, "NOT_FOUND").await;
    assert_problem(app.cancel_job(&other.access, &job).await, 404, "NOT_FOUND").await;
    assert_problem(app.stream_ticket(&other.access, &job).await, 404, "NOT_FOUND").await;
    assert_problem(app.open_events(&job, Some(&other.access), None, None).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn the_event_stream_sends_the_snapshot_progress_in_order_and_one_terminal_event() {
    let app = jobs_app().await;
    let (_, tokens) = app.user().await;
    let job = app.job(&tokens.access, "test.steps", json!({"steps": 5, "ms": 60})).await;
    let events = read_events(app.open_events(&id(&job), Some(&tokens.access), None, None).await).await;
    assert_eq!(events[0].event, "snapshot", "{events:?}");
    let terminal: Vec<_> = events.iter().filter(|e| e.event == "completed").collect();
    assert_eq!(terminal.len(), 1, "exactly one terminal event: {events:?}");
    assert_eq!(events.last().expect("events").event, "completed", "the terminal event is the last");
    let ids: Vec<u64> = events.iter().filter_map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let progress: Vec<u64> = events.iter().map(|e| e.data["progress"].as_u64().expect("progress")).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {progress:?}");
    assert!(events.iter().filter(|e| e.event == "progress").count() >= 3, "{events:?}");
    assert_eq!(events.last().expect("events").data["status"], "completed");
    assert_eq!(events[0].data["id"], job["id"], "every event carries the Job");

    // A late subscriber: the snapshot and the terminal event, then the end.
    let late = read_events(app.open_events(&id(&job), Some(&tokens.access), None, None).await).await;
    let names: Vec<&str> = late.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["snapshot", "completed"]);
    // Resuming after the terminal event: nothing more (204 stops EventSource's reconnects).
    let last = late[1].id.expect("the terminal event has an id");
    assert_eq!(app.open_events(&id(&job), Some(&tokens.access), None, Some(last)).await.status(), 204);
}

#[tokio::test]
async fn last_event_id_resumes_after_the_last_event_seen() {
    let app = jobs_app().await;
    let (_, tokens) = app.user().await;
    let job = app.job(&tokens.access, "test.steps", json!({"steps": 6, "ms": 150})).await;
    let running = app.wait_job(&tokens.access, &id(&job), |j| j["progress"].as_u64() >= Some(30)).await;
    let first = app.open_events(&id(&job), Some(&tokens.access), None, None).await;
    let mut body = first.bytes_stream();
    let mut text = String::new();
    while !text.contains("event: progress") {
        let chunk = futures::StreamExt::next(&mut body).await.expect("more").expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(body);
    let seen = crate::support::jobs::parse_events(&text);
    let last = seen.iter().filter_map(|e| e.id).max().expect("an id");
    let resumed = read_events(app.open_events(&id(&job), Some(&tokens.access), None, Some(last)).await).await;
    assert!(resumed.iter().all(|e| e.id.is_none_or(|i| i > last)), "nothing already seen: {last} then {resumed:?}");
    assert_eq!(resumed.last().expect("events").event, "completed");
    assert!(running["progress"].as_u64() < Some(100));
}

#[tokio::test]
async fn a_ticket_opens_one_stream_for_its_job_and_serves_its_reconnections_while_the_session_lives() {
    let app = jobs_app().await;
    let (account, tokens) = app.user().await;
    let job = app.job(&tokens.access, "test.steps", json!({"steps": 3, "ms": 30})).await;
    let other = app.job(&tokens.access, "test.steps", json!({"steps": 1, "ms": 1})).await;
    let resp = app.stream_ticket(&tokens.access, &id(&job)).await;
    assert_eq!(resp.status(), 201);
    let ticket: Value = resp.json().await.expect("json");
    assert_eq!(ticket["expiresIn"], 60);
    let ticket = ticket["ticket"].as_str().expect("ticket").to_owned();
    // `EventSource`'s first connection has no `Last-Event-ID`.
    let first = app.open_events(&id(&job), None, Some(&ticket), None).await;
    assert_eq!(first.status(), 200);
    let snapshot = read_events(first).await.into_iter().next().expect("a first event");
    assert_eq!(snapshot.event, "snapshot");
    // A second stream from the same ticket is refused; the browser's reconnection to the same
    // URL, with `Last-Event-ID`, is served (the rest of the job, or 204 once it finished).
    assert_problem(app.open_events(&id(&job), None, Some(&ticket), None).await, 401, "UNAUTHENTICATED").await;
    let seen = snapshot.id.expect("the snapshot has an id");
    let resumed = app.open_events(&id(&job), None, Some(&ticket), Some(seen)).await;
    assert!(resumed.status() == 200 || resumed.status() == 204, "{}", resumed.status());
    if resumed.status() == 200 {
        assert_eq!(read_events(resumed).await.last().expect("events").event, "completed");
    }
    // Once the session has ended, the ticket is worth nothing.
    let logout = app.authed(reqwest::Method::POST, "/api/v1/auth/logout-all", &tokens.access).send().await;
    assert_eq!(logout.expect("sent").status(), 204);
    assert_problem(app.open_events(&id(&job), None, Some(&ticket), Some(seen)).await, 401, "SESSION_REVOKED").await;
    let tokens = app.logged_in(&account).await;
    let fresh: Value = app.stream_ticket(&tokens.access, &id(&job)).await.json().await.expect("json");
    let fresh = fresh["ticket"].as_str().expect("ticket").to_owned();
    assert_problem(app.open_events(&id(&other), None, Some(&fresh), None).await, 401, "UNAUTHENTICATED").await;
    assert_problem(app.open_events(&id(&job), None, Some("forged"), None).await, 401, "UNAUTHENTICATED").await;
    assert_problem(app.open_events(&id(&job), None, None, None).await, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_flaky_job_is_retried_with_growing_delays_and_an_always_failing_one_ends_failed() {
    let flaky = Flaky::default();
    let app = app()
        .with_test_jobs(flaky.clone())
        .config(|c| {
            c.get_mut::<app_jobs::JobsConfig>().backoff_delay = Duration::from_millis(300);
            c.get_mut::<app_jobs::JobsConfig>().backoff_max = Duration::from_secs(10);
        })
        .spawn()
        .await;
    let (_, tokens) = app.user().await;
    let job = app.job(&tokens.access, "test.flaky", json!({"fail": 2})).await;
    let done = app.finished_job(&tokens.access, &id(&job)).await;
    assert_eq!((done["status"].as_str(), done["attempts"].as_u64()), (Some("completed"), Some(3)));
    let starts = flaky.starts.lock().expect("lock").clone();
    assert_eq!(starts.len(), 3);
    let (first, second) = (starts[1] - starts[0], starts[2] - starts[1]);
    assert!(first >= Duration::from_millis(300), "first retry after the base delay: {first:?}");
    assert!(second >= Duration::from_millis(600), "the second waits twice as long: {second:?}");
    assert!(second > first);

    let doomed = app.job(&tokens.access, "test.flaky", json!({"fail": 99})).await;
    let dead = app.finished_job(&tokens.access, &id(&doomed)).await;
    assert_eq!((dead["status"].as_str(), dead["attempts"].as_u64()), (Some("failed"), Some(3)), "{dead}");
    assert_eq!(dead["error"], "attempt 3 failed on purpose");
    assert_problem(app.job_result(&tokens.access, &id(&doomed)).await, 409, "CONFLICT").await;
}

#[tokio::test]
async fn cancelling_stops_pending_and_running_jobs_and_a_finished_one_is_a_409() {
    let app = jobs_app().await;
    let (_, admin) = app.admin().await;
    let (_, tokens) = app.user().await;
    let running = app.job(&tokens.access, "test.steps", json!({"steps": 200, "ms": 20})).await;
    app.wait_job(&tokens.access, &id(&running), |j| j["status"] == "active").await;
    assert_eq!(app.cancel_job(&tokens.access, &id(&running)).await.status(), 202);
    let stopped = app.finished_job(&tokens.access, &id(&running)).await;
    assert_eq!(stopped["status"], "cancelled");
    assert!(stopped["progress"].as_u64() < Some(100), "it stopped early: {stopped}");

    assert_eq!(app.queue_action(&admin.access, "test_steps", "pause").await.status(), 204);
    let waiting = app.job(&tokens.access, "test.steps", json!({"steps": 1, "ms": 1})).await;
    let resp = app.cancel_job(&tokens.access, &id(&waiting)).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.json::<Value>().await.expect("json")["status"], "cancelled", "a pending job is cancelled at once");
    assert_eq!(app.queue_action(&admin.access, "test_steps", "resume").await.status(), 204);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.get_job(&tokens.access, &id(&waiting)).await.json::<Value>().await.expect("json")["attempts"],
        0,
        "never run"
    );
    assert_problem(app.cancel_job(&tokens.access, &id(&running)).await, 409, "CONFLICT").await;
}

#[tokio::test]
async fn admins_see_queue_counts_and_pause_and_resume_queues() {
    let app = jobs_app().await;
    let (_, admin) = app.admin().await;
    let (_, tokens) = app.user().await;
    let queues = app.queues(&admin.access).await;
    assert!(queues.get("library_import").is_some() && queues.get("library_export").is_some(), "{queues}");
    assert_eq!(app.queue_action(&admin.access, "library_export", "pause").await.status(), 204);
    let job = app.job(&tokens.access, "library.export", json!({"format": "json"})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queues = app.queues(&admin.access).await;
    assert_eq!(
        (queues["library_export"]["paused"].as_bool(), queues["library_export"]["waiting"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(app.get_job(&tokens.access, &id(&job)).await.json::<Value>().await.expect("json")["status"], "pending");
    assert_eq!(app.queue_action(&admin.access, "library_export", "resume").await.status(), 204);
    assert_eq!(app.finished_job(&tokens.access, &id(&job)).await["status"], "completed");
    let queues = app.queues(&admin.access).await;
    assert_eq!(
        (queues["library_export"]["waiting"].as_u64(), queues["library_export"]["completed"].as_u64()),
        (Some(0), Some(1))
    );
    assert_problem(app.queue_action(&admin.access, "nope", "pause").await, 404, "NOT_FOUND").await;
    assert_problem(app.queue_action(&tokens.access, "library_export", "pause").await, 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn submissions_are_rate_limited_by_the_jobs_policy() {
    let app = app()
        .config(|c| {
            if let Some(p) = c.get_mut::<app_ratelimit::RateLimitConfig>().policies.get_mut("jobs") {
                p.limit = 2;
            }
        })
        .spawn()
        .await;
    let (_, tokens) = app.user().await;
    for _ in 0..2 {
        assert_eq!(app.submit_job(&tokens.access, "library.export", json!({"format": "json"})).await.status(), 202);
    }
    let resp = app.submit_job(&tokens.access, "library.export", json!({"format": "json"})).await;
    assert!(resp.headers().get("retry-after").is_some());
    assert_problem(resp, 429, "RATE_LIMITED").await;
}

/// The `app` binary as a worker process on the test app's Redis prefix and database.
fn worker_process(app: &TestApp, visibility: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_app"))
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REDIS_URL", RedisServer::shared().url())
        .env("APP_REDIS__KEY_PREFIX", &app.prefix)
        .env("DATABASE_URL", &app.database_url)
        .env("APP_DATABASE__MIGRATE_ON_START", "false")
        .env("APP_JOBS__VISIBILITY_TIMEOUT", visibility)
        .env("APP_LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("the app binary starts")
}

#[tokio::test]
async fn a_job_whose_worker_process_is_killed_is_taken_over_and_completes_exactly_once() {
    // The API instance runs no workers: the job can only run in the worker process, at first.
    let api = app()
        .config(|c| {
            c.get_mut::<app_jobs::JobsConfig>().workers = false;
            c.get_mut::<app_jobs::JobsConfig>().visibility_timeout = Duration::from_secs(2);
        })
        .spawn()
        .await;
    let (_, tokens) = api.user().await;
    let items: Vec<Value> = (0..10_000).map(|i| json!({"type": "song", "title": format!("t{i}")})).collect();
    let mut caught = None;
    for _ in 0..5 {
        let mut worker = worker_process(&api, "2s");
        let job = api.job(&tokens.access, "library.import", json!({"items": items})).await;
        let midway = api
            .wait_job(&tokens.access, &id(&job), |j| j["progress"].as_u64() > Some(0) || j["status"] != "pending")
            .await;
        worker.kill().expect("kill the worker");
        let _ = worker.wait();
        if midway["status"] == "active" && midway["progress"].as_u64() < Some(100) {
            caught = Some(id(&job));
            break;
        }
    }
    let job = caught.expect("a worker was killed in the middle of a job");
    let stalled: Value = api.get_job(&tokens.access, &job).await.json().await.expect("json");
    assert_eq!(
        (stalled["status"].as_str(), stalled["attempts"].as_u64()),
        (Some("active"), Some(1)),
        "its worker is dead"
    );
    // A surviving worker (another instance) takes the stalled attempt over after the visibility timeout.
    let survivor = app()
        .instance_of(&api)
        .config(|c| c.get_mut::<app_jobs::JobsConfig>().visibility_timeout = Duration::from_secs(2))
        .spawn()
        .await;
    let done = survivor.finished_job(&tokens.access, &job).await;
    assert_eq!((done["status"].as_str(), done["attempts"].as_u64()), (Some("completed"), Some(2)), "{done}");
    let report: Value = survivor.job_result(&tokens.access, &job).await.json().await.expect("json");
    assert_eq!((report["imported"].as_u64(), report["failed"].as_array().map(Vec::len)), (Some(10_000), Some(0)));
    let library = survivor.page(&tokens.access, "pageSize=1").await;
    assert_eq!(library["total"], 10_000, "every item exactly once, although the first attempt had inserted some");
}

#[tokio::test]
async fn jobs_queued_across_a_redis_restart_all_complete_once() {
    let server = RedisServer::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let app = app().backend(Backend::Redis(server.url())).spawn().await;
    assert!(eventually(Duration::from_secs(10), || async { app.ready().await.status() == 200 }).await);
    let (_, admin) = app.admin().await;
    let (_, tokens) = app.user().await;
    assert_eq!(app.queue_action(&admin.access, "library_export", "pause").await.status(), 204);
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(id(&app.job(&tokens.access, "library.export", json!({"format": "csv"})).await));
    }
    server.restart();
    assert!(eventually(Duration::from_secs(15), || async { app.ready().await.status() == 200 }).await, "reconnected");
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.queue_action(&admin.access, "library_export", "resume").await.status() == 204
        })
        .await
    );
    for job in &ids {
        let done = app.finished_job(&tokens.access, job).await;
        assert_eq!((done["status"].as_str(), done["attempts"].as_u64()), (Some("completed"), Some(1)), "{done}");
    }
    let completed = app.metric("jobs_attempts_total", "outcome=\"completed\"").await;
    assert_eq!(completed, 10.0, "each job completed once");
}

#[tokio::test]
async fn with_redis_stopped_submissions_answer_503_and_workers_resume_when_it_is_back() {
    let server = RedisServer::start();
    let app = app().backend(Backend::Redis(server.url())).spawn().await;
    assert!(eventually(Duration::from_secs(10), || async { app.ready().await.status() == 200 }).await);
    let (_, tokens) = app.user().await;
    server.stop();
    let resp = app.submit_job(&tokens.access, "library.export", json!({"format": "json"})).await;
    assert_problem(resp, 503, "DEPENDENCY_UNAVAILABLE").await;
    server.restart();
    // The restarted server is empty: log in again, then the workers pick the new job up by themselves.
    assert!(eventually(Duration::from_secs(15), || async { app.ready().await.status() == 200 }).await);
    let (_, tokens) = app.user().await;
    let job = app.job(&tokens.access, "library.export", json!({"format": "json"})).await;
    assert_eq!(app.finished_job(&tokens.access, &id(&job)).await["status"], "completed");
}

#[tokio::test]
async fn the_memory_backend_runs_jobs_too() {
    let app = app().backend(Backend::Memory).spawn().await;
    let (_, tokens) = app.user().await;
    app.song(&tokens.access, "Song").await;
    let job = app.job(&tokens.access, "library.export", json!({"format": "json"})).await;
    assert_eq!(app.finished_job(&tokens.access, &id(&job)).await["status"], "completed");
    let events = read_events(app.open_events(&id(&job), Some(&tokens.access), None, None).await).await;
    assert_eq!(events.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(), ["snapshot", "completed"]);
    let exported: Vec<Value> = app.job_result(&tokens.access, &id(&job)).await.json().await.expect("json");
    assert_eq!(exported.len(), 1);
}

#[tokio::test]
async fn at_shutdown_a_running_job_finishes_in_time_or_is_handed_back() {
    let mut first = app()
        .with_test_jobs(Flaky::default())
        .config(|c| c.get_mut::<app_jobs::JobsConfig>().shutdown_timeout = Duration::from_millis(400))
        .spawn()
        .await;
    let (_, tokens) = first.user().await;
    let quick = first.job(&tokens.access, "test.steps", json!({"steps": 2, "ms": 100})).await;
    let slow = first.job(&tokens.access, "test.steps", json!({"steps": 100, "ms": 100})).await;
    first.wait_job(&tokens.access, &id(&quick), |j| j["status"] == "active").await;
    first.wait_job(&tokens.access, &id(&slow), |j| j["status"] == "active").await;
    first.stop().await.expect("stops");
    // A second instance (no workers) reads the register.
    let reader = app()
        .instance_of(&first)
        .with_test_jobs(Flaky::default())
        .config(|c| c.get_mut::<app_jobs::JobsConfig>().workers = false)
        .spawn()
        .await;
    let quick = reader.get_job(&tokens.access, &id(&quick)).await.json::<Value>().await.expect("json");
    assert_eq!(quick["status"], "completed", "finished within the shutdown timeout: {quick}");
    let slow = reader.get_job(&tokens.access, &id(&slow)).await.json::<Value>().await.expect("json");
    assert_eq!((slow["status"].as_str(), slow["attempts"].as_u64()), (Some("pending"), Some(0)), "handed back: {slow}");
}

#[tokio::test]
async fn a_stream_on_one_instance_follows_a_job_running_on_another_with_heartbeats() {
    let api = app()
        .with_test_jobs(Flaky::default())
        .config(|c| {
            c.get_mut::<app_jobs::JobsConfig>().workers = false;
            c.get_mut::<app_jobs::JobsConfig>().stream_heartbeat = Duration::from_millis(150);
        })
        .spawn()
        .await;
    let (_, tokens) = api.user().await;
    let job = api.job(&tokens.access, "test.steps", json!({"steps": 8, "ms": 100})).await;
    let resp = api.open_events(&id(&job), Some(&tokens.access), None, None).await;
    // The job runs on a worker instance; the stream is served by the API instance.
    let _worker = app().instance_of(&api).with_test_jobs(Flaky::default()).spawn().await;
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut body)).await {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    let events = crate::support::jobs::parse_events(&text);
    assert_eq!(events.first().map(|e| e.event.as_str()), Some("snapshot"));
    assert!(events.iter().filter(|e| e.event == "progress").count() >= 3, "progress crossed instances: {events:?}");
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("completed"));
    assert!(text.matches("\n:\n").count() + usize::from(text.starts_with(":\n")) >= 2, "heartbeat comments: {text}");
}

#[tokio::test]
async fn an_open_stream_ends_within_a_heartbeat_of_logout_all() {
    let heartbeat = Duration::from_millis(400);
    let app = app()
        .with_test_jobs(Flaky::default())
        .config(move |c| c.get_mut::<app_jobs::JobsConfig>().stream_heartbeat = heartbeat)
        .spawn()
        .await;
    let (_, tokens) = app.user().await;
    let job = app.job(&tokens.access, "test.steps", json!({"steps": 200, "ms": 100})).await;
    let stream = app.open_events(&id(&job), Some(&tokens.access), None, None).await;
    assert_eq!(stream.status(), 200);
    let reading = tokio::spawn(read_events(stream));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logout = app.authed(reqwest::Method::POST, "/api/v1/auth/logout-all", &tokens.access).send().await;
    assert_eq!(logout.expect("sent").status(), 204);
    let ended = std::time::Instant::now();
    // One heartbeat, and slack for a loaded machine; the job itself would run for 20 s.
    let events = tokio::time::timeout(Duration::from_secs(10), reading).await.expect("the stream ended").expect("read");
    assert!(ended.elapsed() < Duration::from_secs(10));
    assert_eq!(events.first().expect("events").event, "snapshot");
    assert!(
        events.iter().all(|e| e.event == "snapshot" || e.event == "progress"),
        "no terminal event: the job runs on"
    );
}

#[tokio::test]
async fn on_a_fresh_redis_the_workers_take_the_first_job_at_once() {
    // A fresh server has no stream and no consumer group yet: the workers create the group
    // instead of backing off as from an outage (which would make a job submitted a few seconds
    // after start wait seconds more).
    let redis = RedisServer::start();
    let app = app().backend(Backend::Redis(redis.url())).with_test_jobs(Flaky::default()).spawn().await;
    let (_, tokens) = app.user().await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let submitted = std::time::Instant::now();
    let job = app.job(&tokens.access, "test.steps", json!({"steps": 1, "ms": 1})).await;
    let done = app.finished_job(&tokens.access, &id(&job)).await;
    assert_eq!(done["status"], "completed");
    assert!(submitted.elapsed() < Duration::from_secs(2), "taken after {:?}", submitted.elapsed());
}

#[tokio::test]
async fn a_user_at_the_open_jobs_quota_gets_409_and_other_users_are_unaffected() {
    let app = app()
        .with_test_jobs(Flaky::default())
        .config(|c| c.get_mut::<app_jobs::JobsConfig>().max_open_per_user = 2)
        .spawn()
        .await;
    let (_, busy) = app.user().await;
    let (_, other) = app.user().await;
    let slow = json!({"steps": 40, "ms": 50});
    let first = app.job(&busy.access, "test.steps", slow.clone()).await;
    app.job(&busy.access, "test.steps", slow.clone()).await;
    let problem =
        assert_problem(app.submit_job(&busy.access, "test.steps", slow.clone()).await, 409, "QUOTA_EXCEEDED").await;
    assert_eq!(problem["quota"], "jobs.max_open_per_user");
    assert_eq!(app.submit_job(&other.access, "test.steps", json!({"steps": 1, "ms": 1})).await.status(), 202);
    assert_eq!(app.submit_job(&busy.access, "test.flaky", json!({})).await.status(), 202, "another type counts apart");
    // Once one of them ends, the user may submit again.
    assert_eq!(app.cancel_job(&busy.access, &id(&first)).await.status(), 202);
    app.finished_job(&busy.access, &id(&first)).await;
    assert_eq!(app.submit_job(&busy.access, "test.steps", json!({"steps": 1, "ms": 1})).await.status(), 202);
}

#[tokio::test]
async fn an_export_is_streamed_from_the_database_and_redis_holds_none_of_it() {
    let redis = RedisServer::start();
    let app = app().backend(Backend::Redis(redis.url())).spawn().await;
    let (_, tokens) = app.user().await;
    let items: Vec<Value> = (0..2000)
        .map(|i| json!({"type": "song", "title": format!("{i:04} {}", "a long title ".repeat(8)), "tags": ["x"]}))
        .collect();
    let import = app.job(&tokens.access, "library.import", json!({"items": items})).await;
    assert_eq!(app.finished_job(&tokens.access, &id(&import)).await["status"], "completed");
    let export = app.job(&tokens.access, "library.export", json!({"format": "csv"})).await;
    assert_eq!(app.finished_job(&tokens.access, &id(&export)).await["status"], "completed");
    let resp = app.job_result(&tokens.access, &id(&export)).await;
    let length: usize = resp.headers()["content-length"].to_str().expect("ascii").parse().expect("a length");
    let text = resp.text().await.expect("text");
    assert_eq!(text.len(), length);
    assert!(length > 256 * 1024, "more than one chunk: {length} bytes");
    assert_eq!(text.lines().count(), 2001, "the header and every item");
    assert!(text.contains("\"0000 a long title") && text.contains("\"1999 a long title"));

    let reply = redis.command(&["SCAN", "0", "MATCH", &format!("{}*", app.prefix), "COUNT", "100000"]);
    let keys: Vec<&str> = reply.lines().map(str::trim).filter(|l| l.starts_with(&app.prefix)).collect();
    assert!(!keys.is_empty());
    let held: usize =
        keys.iter().map(|key| redis.command(&["MEMORY", "USAGE", key]).trim().parse::<usize>().unwrap_or(0)).sum();
    assert!(held < length / 4, "Redis holds {held} bytes over {} keys for a {length}-byte export", keys.len());
}

#[tokio::test]
async fn a_result_larger_than_the_limit_fails_the_job_for_good() {
    let app = app().config(|c| c.get_mut::<app_jobs::JobsConfig>().max_result_bytes = 1024).spawn().await;
    let (_, tokens) = app.user().await;
    for n in 0..20 {
        app.song(&tokens.access, &format!("song number {n} with a title")).await;
    }
    let job = app.job(&tokens.access, "library.export", json!({"format": "json"})).await;
    let done = app.finished_job(&tokens.access, &id(&job)).await;
    assert_eq!((done["status"].as_str(), done["attempts"].as_u64()), (Some("failed"), Some(1)), "{done}");
    assert!(done["error"].as_str().expect("error").contains("jobs.max_result_bytes"), "{done}");
    assert_problem(app.job_result(&tokens.access, &id(&job)).await, 409, "CONFLICT").await;
}
