//! The rules operations declare, over HTTP against a real Redis: a request one policy refuses
//! is counted by none (so one address cannot lock an account's owner out), an operation's
//! policies travel with the session check, `@SkipThrottle`, route scope, IPv6 subjects, and
//! the TTL of every key the limiter writes.

use std::time::Duration;

use app_core::testing::RedisServer;
use app_ratelimit::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    rate_limit::policy,
    support::{Backend, TestApp, app, assert_problem},
};

/// A login from `ip` (the test client is a trusted proxy in these apps).
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/auth/login")
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn an_attacker_on_one_address_cannot_lock_the_owner_out_from_another() {
    let app = app()
        .config(|c| {
            c.get_mut::<app_ratelimit::RateLimitConfig>().trusted_proxies = vec!["127.0.0.1".into()];
            policy(
                c.get_mut::<app_ratelimit::RateLimitConfig>(),
                "auth",
                3,
                Duration::from_secs(600),
                Some(Duration::from_secs(600)),
            );
            policy(c.get_mut::<app_ratelimit::RateLimitConfig>(), "auth_account", 6, Duration::from_secs(600), None);
        })
        .spawn()
        .await;
    let victim = app.signed_up().await; // one of the account's 6
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(login_from(&app, "198.51.100.66", &victim.email, "a guess").await.status().as_u16());
    }
    assert_eq!(statuses[..4], [401, 401, 401, 429], "the attacker's address is blocked for this account");
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    // The refused attempts were counted by no policy: the account spent 4 of its 6.
    let resp = login_from(&app, "203.0.113.5", &victim.email, &victim.password).await;
    assert_eq!(resp.status(), 200, "the owner logs in from their own address");
    let state = resp.headers()["ratelimit"].to_str().expect("ascii").to_owned();
    assert!(state.contains("\"auth_account\";r=1;"), "{state}");
}

/// The script calls (EVALSHA: one round trip each) Redis served since the last call, leaving
/// out the failed ones: a script's first call on a server answers NOSCRIPT and is sent again
/// with the script, once per server and script.
fn evalsha_calls(redis: &RedisServer) -> u64 {
    let info = redis.command(&["INFO", "commandstats"]);
    let line = info.lines().find_map(|l| l.trim().strip_prefix("cmdstat_evalsha:")).unwrap_or_default().to_owned();
    let field = |name: &str| -> u64 {
        line.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok()).unwrap_or(0)
    };
    redis.command(&["CONFIG", "RESETSTAT"]);
    field("calls") - field("failed_calls")
}

#[tokio::test]
async fn an_operations_policy_travels_with_the_session_check() {
    // The same job submission on an app with the limiter on (`api` and `jobs`) and off: the
    // policies add no script call, so no round trip.
    let mut calls = Vec::new();
    for limited in [true, false] {
        let redis = RedisServer::start();
        let app = app()
            .backend(Backend::Redis(redis.url()))
            .config(move |c| {
                c.get_mut::<app_jobs::JobsConfig>().workers = false;
                c.get_mut::<app_ratelimit::RateLimitConfig>().enabled = limited;
            })
            .spawn()
            .await;
        let (_, tokens) = app.user().await;
        // Once first, so every script it runs is loaded (a script's first call on a server
        // is a NOSCRIPT answer and a second call).
        assert_eq!(app.submit_job(&tokens.access, "library.export", json!({"format": "csv"})).await.status(), 202);
        evalsha_calls(&redis);
        let resp = app.submit_job(&tokens.access, "library.export", json!({"format": "json"})).await;
        assert_eq!(resp.status(), 202);
        if limited {
            let policies = resp.headers()["ratelimit-policy"].to_str().expect("ascii").to_owned();
            assert!(policies.contains("\"api\"") && policies.contains("\"jobs\""), "{policies}");
        }
        calls.push(evalsha_calls(&redis));
    }
    assert_eq!(calls[0], calls[1], "script calls with the limiter on and off: {calls:?}");
}

#[tokio::test]
async fn logging_out_is_never_refused_by_the_default_policy() {
    let app = app()
        .config(|c| policy(c.get_mut::<app_ratelimit::RateLimitConfig>(), "api", 2, Duration::from_secs(600), None))
        .spawn()
        .await;
    let (_, tokens) = app.user().await;
    let statuses = futures::future::join_all((0..3).map(|_| app.me(&tokens.access))).await;
    assert!(statuses.iter().any(|r| r.status() == 429), "the user is at the limit");
    let resp = app.authed(Method::POST, "/api/v1/auth/logout", &tokens.access).send().await.expect("sent");
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().get("ratelimit-policy").is_none(), "no policy was evaluated");
}

#[tokio::test]
async fn a_policy_scoped_per_route_counts_each_operation_apart() {
    let app = app()
        .config(|c| {
            policy(c.get_mut::<app_ratelimit::RateLimitConfig>(), "auth", 2, Duration::from_secs(600), None);
            c.get_mut::<app_ratelimit::RateLimitConfig>().policies.get_mut("auth").expect("auth").scope = Scope::Route;
        })
        .spawn()
        .await;
    let account = app.signed_up().await; // 1 of register's 2
    for expected in [401, 401, 429] {
        assert_eq!(app.login(&account.email, "a guess").await.status(), expected);
    }
    let again = app.register(&account.email, "another password", "Ann").await;
    assert_problem(again, 409, "EMAIL_TAKEN").await; // register still has its own allowance
    assert_problem(app.register(&account.email, "another password", "Ann").await, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64() {
    let app = app()
        .config(|c| {
            c.get_mut::<app_ratelimit::RateLimitConfig>().trusted_proxies = vec!["127.0.0.1".into()];
            policy(c.get_mut::<app_ratelimit::RateLimitConfig>(), "api", 1, Duration::from_secs(600), None);
        })
        .spawn()
        .await;
    let send = |ip: &'static str| app.request(Method::GET, "/api/v1/users/me").header("x-forwarded-for", ip).send();
    assert_eq!(send("2001:db8:1:2::1").await.unwrap().status(), 401);
    assert_eq!(send("2001:db8:1:2:ffff::9").await.unwrap().status(), 429, "the same /64");
    assert_eq!(send("2001:db8:1:3::1").await.unwrap().status(), 401, "another /64");
}

#[tokio::test]
async fn every_key_the_limiter_writes_carries_a_ttl() {
    let redis = RedisServer::start();
    let app = app()
        .backend(Backend::Redis(redis.url()))
        .config(|c| {
            c.get_mut::<app_jobs::JobsConfig>().workers = false;
            policy(
                c.get_mut::<app_ratelimit::RateLimitConfig>(),
                "auth",
                2,
                Duration::from_secs(600),
                Some(Duration::from_secs(300)),
            );
        })
        .spawn()
        .await;
    let (account, tokens) = app.user().await;
    app.me(&tokens.access).await;
    app.submit_job(&tokens.access, "library.export", json!({"format": "json"})).await;
    for _ in 0..3 {
        app.login(&account.email, "a guess").await; // blocks `auth`, refunds the others
    }
    app.get("/api/v1/no-such-route").await;
    let pattern = format!("{}rl:*", app.prefix);
    let reply = redis.command(&["SCAN", "0", "MATCH", &pattern, "COUNT", "10000"]);
    let keys: Vec<&str> = reply.lines().map(str::trim).filter(|l| l.contains("rl:")).collect();
    let policies: std::collections::BTreeSet<&str> =
        keys.iter().filter_map(|k| k.split("rl:").nth(1)?.split(':').next()).collect();
    assert_eq!(
        policies.into_iter().collect::<Vec<_>>(),
        ["api", "auth", "auth_account", "auth_ip", "jobs"],
        "{keys:?}"
    );
    for key in keys {
        let ttl = redis.pttl(key);
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn the_spec_names_each_operations_policies() {
    let app = app().spawn().await;
    let spec: Value = app.openapi().await.json().await.expect("json");
    let op = |path: &str| &spec["paths"][path]["post"];
    let login = op("/api/v1/auth/login");
    assert!(login["description"].as_str().unwrap().ends_with("the default policy, `auth`, `auth_account`, `auth_ip`."));
    assert!(login["responses"]["429"].is_object());
    let logout = op("/api/v1/auth/logout");
    assert!(logout["responses"].get("429").is_none(), "logout skips the default policy");
    assert!(logout["responses"]["204"].get("headers").is_none_or(|h| h.get("RateLimit").is_none()));
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let limited = path.starts_with("/api/") && op["operationId"] != "logout";
            assert_eq!(op["responses"].get("429").is_some(), limited, "{method} {path}");
            let description = op["description"].as_str().unwrap_or_default();
            assert_eq!(description.contains("**Rate limits:**"), path.starts_with("/api/"), "{method} {path}");
        }
    }
    let described = |id: &str| {
        spec["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(_, item)| item.as_object().into_iter().flatten())
            .any(|(_, op)| op["operationId"] == id && op["description"].as_str().is_some_and(|d| d.contains("`")))
    };
    for operation in ["register", "login", "refresh", "submitJob"] {
        assert!(described(operation), "{operation}'s own policies are in its description");
    }
}

#[tokio::test]
async fn bogus_refresh_tokens_from_a_neighbour_leave_the_victims_refresh_working() {
    let app = app()
        .config(|c| policy(c.get_mut::<app_ratelimit::RateLimitConfig>(), "auth_ip", 5, Duration::from_secs(600), None))
        .spawn()
        .await;
    let (_, victim) = app.user().await; // registering and logging in spend 2 of the address's 5

    // Tokens naming the victim's user and session, with secrets the neighbour made up, from
    // the same address as the victim (the loopback).
    let (named, _secret) = victim.refresh.rsplit_once('.').expect("a refresh token");
    let mut statuses = Vec::new();
    for n in 0..6 {
        let bogus = format!("{named}.{}", format!("{n}").repeat(43));
        let resp = app.refresh(&bogus).await;
        let status = resp.status().as_u16();
        if status == 429 {
            assert_problem(resp, 429, "RATE_LIMITED").await;
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429], "failures are counted and refused by address");
    let resp = app.refresh(&victim.refresh).await;
    assert_eq!(resp.status(), 200, "the victim's valid token is refused by nobody's failures");
    let next = resp.json::<Value>().await.expect("json")["refreshToken"].as_str().expect("a token").to_owned();
    assert_eq!(app.refresh(&next).await.status(), 200, "and keeps working");
}
