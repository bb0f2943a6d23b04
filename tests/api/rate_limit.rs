//! Rate-limit guards over HTTP against a real Redis: exactness under concurrency (one and two
//! instances), login brute force, isolation, client identity behind proxies, headers, outages,
//! and the admin routes.

use std::time::Duration;

use app_core::testing::{RedisServer, eventually};
use app_ratelimit::{FailureMode, RateLimitConfig};
use reqwest::Method;
use serde_json::Value;

use crate::support::{Backend, TestApp, app, assert_problem, auth::unique_email, spawn_app};

/// Sets a policy's numbers.
pub(crate) fn policy(c: &mut RateLimitConfig, name: &str, limit: u32, window: Duration, block: Option<Duration>) {
    let p = c.policies.get_mut(name).expect("a configured policy");
    p.limit = limit;
    p.window = window;
    p.block = block;
}

async fn hammer(apps: &[&TestApp], token: &str, n: usize) -> (usize, usize) {
    let requests: Vec<_> =
        (0..n).map(|i| apps[i % apps.len()].authed(Method::GET, "/api/v1/users/me", token).send()).collect();
    let (mut ok, mut limited) = (0, 0);
    for resp in futures::future::join_all(requests).await {
        match resp.expect("sent").status().as_u16() {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, limited)
}

#[tokio::test]
async fn exactly_the_limit_is_admitted_under_concurrency_on_one_and_on_two_instances() {
    let one = app()
        .config(|c| policy(c.get_mut::<RateLimitConfig>(), "api", 10, Duration::from_secs(600), None))
        .spawn()
        .await;
    // Registration and login are anonymous: they count against the address, not the user.
    let (_, tokens) = one.user().await;
    assert_eq!(hammer(&[&one], &tokens.access, 50).await, (10, 40));

    let a = app()
        .config(|c| policy(c.get_mut::<RateLimitConfig>(), "api", 10, Duration::from_secs(600), None))
        .spawn()
        .await;
    let prefix_and_db = (a.prefix.clone(), a.database_url.clone());
    let b = app()
        .config(move |c| {
            policy(c.get_mut::<RateLimitConfig>(), "api", 10, Duration::from_secs(600), None);
            c.get_mut::<app_redis::RedisConfig>().key_prefix = prefix_and_db.0;
            c.get_mut::<app_database::DatabaseConfig>().url = prefix_and_db.1;
        })
        .spawn()
        .await;
    let (_, tokens) = a.user().await;
    assert_eq!(hammer(&[&a, &b], &tokens.access, 50).await, (10, 40), "two instances share one limit");
}

#[tokio::test]
async fn limited_and_admitted_responses_carry_the_rate_limit_headers() {
    let app =
        app().config(|c| policy(c.get_mut::<RateLimitConfig>(), "api", 3, Duration::from_secs(60), None)).spawn().await;
    let (_, tokens) = app.user().await;
    let resp = app.me(&tokens.access).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["x-ratelimit-limit"], "3");
    assert_eq!(h["x-ratelimit-remaining"], "2");
    let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().expect("epoch seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(reset > now && reset <= now + 61, "{reset} vs {now}");
    assert_eq!(h["ratelimit-policy"], "\"api\";q=3;w=60");
    assert!(h["ratelimit"].to_str().unwrap().starts_with("\"api\";r=2;t="), "{:?}", h["ratelimit"]);

    assert_eq!(app.me(&tokens.access).await.status(), 200);
    assert_eq!(app.me(&tokens.access).await.status(), 200);
    let resp = app.me(&tokens.access).await;
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().expect("seconds");
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    let body = assert_problem(resp, 429, "RATE_LIMITED").await;
    assert_eq!(body["retryAfter"], retry);
    assert!(body["detail"].as_str().unwrap().contains("'api'"), "{body}");
    assert!(app.live().await.headers().get("x-ratelimit-limit").is_none(), "health is exempt");
}

#[tokio::test]
async fn login_brute_force_is_blocked_then_released_without_locking_the_account_elsewhere() {
    let app = app()
        .config(|c| {
            policy(c.get_mut::<RateLimitConfig>(), "auth", 4, Duration::from_secs(600), Some(Duration::from_secs(2)))
        })
        .spawn()
        .await;
    let victim = app.signed_up().await; // registration counts once for this address and email
    for _ in 0..3 {
        assert_problem(app.login(&victim.email, "wrong guess").await, 401, "INVALID_CREDENTIALS").await;
    }
    let resp = app.login(&victim.email, &victim.password).await;
    assert_eq!(resp.headers()["retry-after"], "2", "the block, not the window");
    assert_problem(resp, 429, "RATE_LIMITED").await;
    // The attacker's address is blocked for this account only: other accounts log in from it.
    let other = app.signed_up().await;
    assert_eq!(app.login(&other.email, &other.password).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(app.login(&victim.email, &victim.password).await.status(), 200, "released after the block");
}

#[tokio::test]
async fn rotating_addresses_is_bounded_per_account() {
    let app = app()
        .config(|c| {
            c.get_mut::<RateLimitConfig>().trusted_proxies = vec!["127.0.0.1".into()];
            policy(c.get_mut::<RateLimitConfig>(), "auth_account", 4, Duration::from_secs(600), None);
        })
        .spawn()
        .await;
    let victim = app.signed_up().await; // registering counted once
    let mut statuses = Vec::new();
    for i in 0..5 {
        let resp = app
            .request(Method::POST, "/api/v1/auth/login")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&serde_json::json!({"email": victim.email, "password": "guess"}))
            .send()
            .await
            .expect("sent");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "every address counts against the account");
}

#[tokio::test]
async fn users_are_limited_separately() {
    let app = app()
        .config(|c| policy(c.get_mut::<RateLimitConfig>(), "api", 5, Duration::from_secs(600), None))
        .spawn()
        .await;
    let (_, alice) = app.user().await;
    let (_, bob) = app.user().await;
    assert_eq!(hammer(&[&app], &alice.access, 7).await, (5, 2));
    assert_eq!(app.me(&bob.access).await.status(), 200, "bob has his own allowance");
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let app = app()
        .config(|c| policy(c.get_mut::<RateLimitConfig>(), "api", 2, Duration::from_secs(600), None))
        .spawn()
        .await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let resp = app
            .request(Method::GET, "/api/v1/users/me")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("forwarded", format!("for=203.0.113.{i}"))
            .send()
            .await
            .expect("sent");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429], "counted on the real peer address");
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_for_is_honoured() {
    let app = app()
        .config(|c| {
            c.get_mut::<RateLimitConfig>().trusted_proxies = vec!["127.0.0.0/8".into()];
            policy(c.get_mut::<RateLimitConfig>(), "api", 1, Duration::from_secs(600), None);
        })
        .spawn()
        .await;
    let send = |xff: &'static str| app.request(Method::GET, "/api/v1/users/me").header("x-forwarded-for", xff).send();
    assert_eq!(send("6.6.6.6, 198.51.100.1").await.unwrap().status(), 401, "client 198.51.100.1");
    assert_eq!(send("198.51.100.2").await.unwrap().status(), 401, "another client, another allowance");
    assert_eq!(send("7.7.7.7, 198.51.100.1").await.unwrap().status(), 429, "the forged hop is ignored");
}

#[tokio::test]
async fn with_redis_stopped_policies_fail_open_or_closed_as_configured_and_recover() {
    let redis = RedisServer::start();
    let app = app()
        .backend(Backend::Redis(redis.url()))
        .config(|c| {
            policy(c.get_mut::<RateLimitConfig>(), "api", 1000, Duration::from_secs(60), None);
            c.get_mut::<RateLimitConfig>().policies.get_mut("auth").unwrap().on_unavailable = FailureMode::Closed;
        })
        .spawn()
        .await;
    assert_eq!(app.register(&unique_email(), "a good password", "Ann").await.status(), 201);
    redis.stop();
    // `api` fails open: the request goes through to the guard, which needs no Redis to say 401.
    let resp = app.get("/api/v1/users/me").await;
    assert!(resp.headers().get("x-ratelimit-limit").is_none(), "no state to report while Redis is down");
    assert_problem(resp, 401, "UNAUTHENTICATED").await;
    // `auth` fails closed: registration (which itself needs only the database) is refused.
    let resp = app.register(&unique_email(), "a good password", "Ann").await;
    assert_problem(resp, 503, "DEPENDENCY_UNAVAILABLE").await;
    assert!(app.metrics().await.contains("outcome=\"store_unavailable\""), "counted in the metrics");
    redis.restart();
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.register(&unique_email(), "a good password", "Ann").await.status() == 201
        })
        .await,
        "recovers without a restart"
    );
    assert!(app.get("/api/v1/users/me").await.headers().get("x-ratelimit-limit").is_some());
}

#[tokio::test]
async fn admins_read_and_reset_a_subjects_state() {
    let app = app()
        .config(|c| {
            policy(c.get_mut::<RateLimitConfig>(), "auth", 2, Duration::from_secs(600), Some(Duration::from_secs(600)))
        })
        .spawn()
        .await;
    let (_, admin) = app.admin().await;
    let (_, user) = app.user().await;
    let victim = app.signed_up().await;
    for _ in 0..3 {
        app.login(&victim.email, "wrong guess").await;
    }
    let path = format!("/api/v1/admin/rate-limits/auth/ip:127.0.0.1,email:{}", victim.email.to_uppercase());
    let resp = app.authed(Method::GET, &path, &admin.access).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["limit"], 2);
    assert_eq!(status["remaining"], 0);
    assert_eq!(status["blocked"], true);
    assert!(status["resetAt"].as_str().unwrap().ends_with('Z'));

    assert_problem(app.authed(Method::DELETE, &path, &user.access).send().await.unwrap(), 403, "FORBIDDEN").await;
    assert_eq!(app.authed(Method::DELETE, &path, &admin.access).send().await.unwrap().status(), 204);
    assert_eq!(app.login(&victim.email, &victim.password).await.status(), 200, "the block is lifted");
    let resp = app.authed(Method::GET, &path, &admin.access).send().await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["blocked"], false);

    let unknown = app.authed(Method::GET, "/api/v1/admin/rate-limits/nope/ip:1.2.3.4", &admin.access).send();
    assert_problem(unknown.await.unwrap(), 404, "NOT_FOUND").await;
    let bad = app.authed(Method::GET, "/api/v1/admin/rate-limits/auth/planet:mars", &admin.access).send();
    assert_problem(bad.await.unwrap(), 400, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn the_memory_backend_limits_too() {
    let app = app()
        .backend(Backend::Memory)
        .config(|c| policy(c.get_mut::<RateLimitConfig>(), "api", 3, Duration::from_secs(600), None))
        .spawn()
        .await;
    let (_, tokens) = app.user().await;
    assert_eq!(hammer(&[&app], &tokens.access, 5).await, (3, 2));
}

#[tokio::test]
async fn the_default_policy_applies_to_every_api_route_and_not_to_docs() {
    let app = spawn_app().await;
    for path in ["/api/v1/users/me", "/api/v1/auth/sessions", "/api/v1/no-such-route"] {
        let resp = app.get(path).await;
        assert!(resp.headers()["ratelimit-policy"].to_str().unwrap().starts_with("\"api\";q="), "{path}");
    }
    for path in ["/openapi.json", "/docs", "/metrics", "/health/ready"] {
        assert!(app.get(path).await.headers().get("ratelimit-policy").is_none(), "{path} is exempt");
    }
}

#[tokio::test]
async fn sessions_record_the_client_address_behind_a_trusted_proxy() {
    let app = app().config(|c| c.get_mut::<RateLimitConfig>().trusted_proxies = vec!["127.0.0.1".into()]).spawn().await;
    let account = app.signed_up().await;
    let resp = app
        .request(Method::POST, "/api/v1/auth/login")
        .header("x-forwarded-for", "198.51.100.23")
        .json(&serde_json::json!({"email": account.email, "password": account.password}))
        .send()
        .await
        .expect("sent");
    let token = resp.json::<Value>().await.unwrap()["accessToken"].as_str().unwrap().to_owned();
    let list: Value =
        app.authed(Method::GET, "/api/v1/auth/sessions", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["ip"], "198.51.100.23");
}

#[tokio::test]
async fn one_address_trying_many_accounts_is_bounded() {
    let app = app()
        .config(|c| policy(c.get_mut::<RateLimitConfig>(), "auth_ip", 3, Duration::from_secs(600), None))
        .spawn()
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.login(&unique_email(), "some password").await.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
}
