//! The guarded cached read's design, on a real Redis and a real Cluster: one script call per
//! request (the rate-limit count, which also reads the user's version), sessions and cache
//! entries served from in-process copies while the version says they are current, and every
//! guarantee kept across instances: a logout, a revocation and a write are seen by the very next
//! request on the other instance.

use std::time::Duration;

use app_core::testing::{RedisCluster, RedisServer, eventually};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, app, assert_problem};

/// Redis's count of `command` calls since the last reset.
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let stats = redis.command(&["INFO", "commandstats"]);
    stats
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
        .and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_guarded_cached_read_costs_one_script_call_and_no_other_command() {
    let redis = RedisServer::start();
    let app = app().backend(Backend::Redis(redis.url())).spawn().await;
    let (_, tokens) = app.user().await;
    for _ in 0..3 {
        assert_eq!(app.me(&tokens.access).await.status(), 200);
    }
    redis.command(&["CONFIG", "RESETSTAT"]);
    for _ in 0..20 {
        assert_eq!(app.me(&tokens.access).await.status(), 200);
    }
    let scripts = calls(&redis, "evalsha");
    // One script per request; a session's store record is re-read at most once a second (a
    // request or two more under a slow machine). Inside it: the count and one read.
    let stats = redis.command(&["INFO", "commandstats"]);
    assert!((20..=26).contains(&scripts), "{scripts} script calls for 20 requests: {stats}");
    // Inside it: the clock, the count, and one read of the user's version; no session read.
    assert_eq!(calls(&redis, "mget"), 0, "{stats}");
    assert!(calls(&redis, "get") <= scripts, "one key read per request: {stats}");
    assert!(calls(&redis, "hmget") <= scripts - 20 + 1, "the session's record is not read per request: {stats}");
}

async fn two_instances(url: String) -> (TestApp, TestApp) {
    let a = app().backend(Backend::Redis(url.clone())).spawn().await;
    let b = app().backend(Backend::Redis(url)).instance_of(&a).spawn().await;
    for app in [&a, &b] {
        let ready = eventually(Duration::from_secs(20), || async { app.ready().await.status() == 200 }).await;
        assert!(ready, "the app reaches Redis");
    }
    (a, b)
}

/// What both topologies must show: B keeps A's user's session and entries in process, and
/// still sees every change A makes on its very next request.
async fn changes_on_one_instance_reach_the_next_request_on_the_other(a: &TestApp, b: &TestApp) {
    let (account, tokens) = a.user().await;
    async fn me(app: &TestApp, token: &str) -> Value {
        app.me(token).await.json::<Value>().await.expect("json")
    }
    for _ in 0..3 {
        assert_eq!(me(b, &tokens.access).await["name"], "Test User", "B reads, then serves its copies");
    }
    let renamed = a
        .authed(Method::PATCH, "/api/v1/users/me", &tokens.access)
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(renamed.status(), 200);
    assert_eq!(me(b, &tokens.access).await["name"], "Renamed", "B's next read sees A's write");

    b.song(&tokens.access, "One").await;
    assert_eq!(b.page(&tokens.access, "").await["total"], 1);
    a.song(&tokens.access, "Two").await;
    assert_eq!(b.page(&tokens.access, "").await["total"], 2, "B's next page sees A's insert");

    // A second session, revoked by id on A: B refuses it at once, and keeps serving the first.
    let second = a.logged_in(&account).await;
    assert_eq!(b.me(&second.access).await.status(), 200);
    let path = format!("/api/v1/auth/sessions/{}", second.session_id);
    assert_eq!(a.authed(Method::DELETE, &path, &tokens.access).send().await.expect("sent").status(), 204);
    assert_problem(b.me(&second.access).await, 401, "SESSION_REVOKED").await;
    assert_eq!(b.me(&tokens.access).await.status(), 200);
    let resp = a.authed(Method::POST, "/api/v1/auth/logout-all", &tokens.access).send().await.expect("sent");
    assert_eq!(resp.status(), 204);
    assert_problem(b.me(&tokens.access).await, 401, "SESSION_REVOKED").await;
}

#[tokio::test]
async fn on_one_redis_a_change_on_one_instance_reaches_the_next_request_on_the_other() {
    let redis = RedisServer::start();
    let (a, b) = two_instances(redis.url()).await;
    changes_on_one_instance_reach_the_next_request_on_the_other(&a, &b).await;
}

#[tokio::test]
async fn on_a_cluster_a_change_on_one_instance_reaches_the_next_request_on_the_other() {
    let cluster = RedisCluster::start();
    let (a, b) = two_instances(cluster.url()).await;
    changes_on_one_instance_reach_the_next_request_on_the_other(&a, &b).await;
}
