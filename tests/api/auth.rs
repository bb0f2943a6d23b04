//! Register, login, tokens, refresh rotation, sessions and guards, over HTTP against a real
//! Redis and a real database.

use std::time::{Duration, Instant};

use app_core::testing::{RedisServer, eventually};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Backend, app, assert_problem,
    auth::{Tokens, unique_email},
    spawn_app,
};

#[tokio::test]
async fn register_then_login_gives_tokens_a_refresh_cookie_and_a_profile() {
    let app = spawn_app().await;
    let email = unique_email();
    let resp = app.register(&email.to_uppercase(), "correct horse", "  Ann  ").await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let user: Value = resp.json().await.expect("json");
    assert_eq!(location, format!("/api/v1/users/{}", user["id"].as_str().expect("id")));
    assert_eq!(user["email"], email.as_str(), "stored normalized");
    assert_eq!(user["name"], "Ann");
    assert_eq!(user["role"], "user");
    assert!(user.get("passwordHash").is_none() && !user.to_string().contains("argon2"), "{user}");

    let resp = app.login(&email, "correct horse").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let cookie = resp.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    assert!(body["refreshExpiresIn"].as_u64().expect("number") > 900);
    let tokens = Tokens::from_json(&body);
    assert!(cookie.starts_with(&format!("refresh_token={}", tokens.refresh)), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not Secure in development: {cookie}");

    let me = app.me(&tokens.access).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["cache-control"], "no-store");
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["email"], email.as_str());
}

#[tokio::test]
async fn an_email_is_taken_whatever_its_case() {
    let app = spawn_app().await;
    let account = app.signed_up().await;
    let resp = app.register(&account.email.to_uppercase(), "another password", "Bob").await;
    assert_problem(resp, 409, "EMAIL_TAKEN").await;
    // The schema says `format: email`: surrounding spaces are the client's to trim.
    let resp = app.register(&format!("  {}", account.email), "another password", "Bob").await;
    let problem = assert_problem(resp, 400, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"][0]["field"], "email");
}

#[tokio::test]
async fn registration_validates_every_field_without_echoing_values() {
    let app = spawn_app().await;
    let resp = app.register("not-an-email", "short77", "").await;
    let body = assert_problem(resp, 400, "VALIDATION_FAILED").await;
    let fields: Vec<&str> =
        body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "name", "password"]);
    assert!(!body.to_string().contains("short77"), "the password is never echoed: {body}");

    let too_long = "x".repeat(129);
    assert_problem(app.register(&unique_email(), &too_long, "Ann").await, 400, "VALIDATION_FAILED").await;
    // Length counts characters, not bytes: 7 Cyrillic letters (13 bytes) are too short, 128
    // accented letters (256 bytes) are fine.
    assert_problem(app.register(&unique_email(), "пароль1", "Ann").await, 400, "VALIDATION_FAILED").await;
    assert_eq!(app.register(&unique_email(), &"é".repeat(128), "Ann").await.status(), 201);
    // The password is used exactly as sent (spaces included).
    let email = unique_email();
    assert_eq!(app.register(&email, " пароль1 ", "Ann").await.status(), 201);
    assert_eq!(app.login(&email, " пароль1 ").await.status(), 200);
    assert_eq!(app.login(&email, "пароль1").await.status(), 401, "no trimming");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let app = spawn_app().await;
    let account = app.signed_up().await;
    let mut answers = Vec::new();
    let (mut unknown_times, mut wrong_times) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let started = Instant::now();
        let unknown = app.login(&unique_email(), &account.password).await;
        unknown_times.push(started.elapsed());
        let started = Instant::now();
        let wrong = app.login(&account.email, "wrong password").await;
        wrong_times.push(started.elapsed());
        for resp in [unknown, wrong] {
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            let mut body = assert_problem(resp, 401, "INVALID_CREDENTIALS").await;
            body.as_object_mut().expect("object").remove("requestId");
            answers.push(body);
        }
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "the same body every time: {answers:?}");
    unknown_times.sort();
    wrong_times.sort();
    // Both verify an argon2id hash; a fast path for unknown emails would take a fraction of it.
    // The fastest of each is compared: other tests running alongside only ever add time.
    assert!(unknown_times[0] * 3 > wrong_times[0], "unknown {unknown_times:?} vs wrong {wrong_times:?}");
}

#[tokio::test]
async fn logout_revokes_the_session_on_the_next_request_on_every_instance() {
    let a = spawn_app().await;
    let b = app().instance_of(&a).spawn().await;
    let (_, tokens) = a.user().await;
    assert_eq!(b.me(&tokens.access).await.status(), 200, "instance B accepts A's session");
    let resp = a.authed(Method::POST, "/api/v1/auth/logout", &tokens.access).send().await.expect("sent");
    assert_eq!(resp.status(), 204);
    assert!(resp.headers()["set-cookie"].to_str().expect("ascii").contains("Max-Age=0"), "the cookie is cleared");
    assert_problem(b.me(&tokens.access).await, 401, "SESSION_REVOKED").await;
    assert_problem(a.refresh(&tokens.refresh).await, 401, "SESSION_REVOKED").await;
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one_or_all_at_once() {
    let a = spawn_app().await;
    let b = app().instance_of(&a).spawn().await;
    let account = a.signed_up().await;
    let first = a.logged_in(&account).await;
    let second = b.logged_in(&account).await;

    let list: Value = b
        .authed(Method::GET, "/api/v1/auth/sessions", &first.access)
        .header("user-agent", "tests")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let list = list.as_array().expect("a plain array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], first.session_id.as_str());
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[1]["current"], false);
    assert_eq!(list[0]["ip"], "127.0.0.1");
    for field in ["createdAt", "lastSeenAt", "expiresAt"] {
        assert!(list[0][field].as_str().is_some_and(|t| t.ends_with('Z')), "{field}: {}", list[0]);
    }

    // Someone else's session id is a 404 and changes nothing.
    let (_, stranger) = a.user().await;
    let path = format!("/api/v1/auth/sessions/{}", second.session_id);
    assert_problem(a.authed(Method::DELETE, &path, &stranger.access).send().await.expect("sent"), 404, "NOT_FOUND")
        .await;
    assert_eq!(a.me(&second.access).await.status(), 200);
    assert_problem(
        a.authed(Method::DELETE, "/api/v1/auth/sessions/not-a-session", &first.access).send().await.expect("sent"),
        404,
        "NOT_FOUND",
    )
    .await;

    let resp = a.authed(Method::DELETE, &path, &first.access).send().await.expect("sent");
    assert_eq!(resp.status(), 204);
    assert_problem(b.me(&second.access).await, 401, "SESSION_REVOKED").await;
    assert_eq!(b.me(&first.access).await.status(), 200);

    let third = a.logged_in(&account).await;
    let resp = b.authed(Method::POST, "/api/v1/auth/logout-all", &third.access).send().await.expect("sent");
    assert_eq!(resp.status(), 204);
    for tokens in [&first, &third] {
        assert_problem(a.me(&tokens.access).await, 401, "SESSION_REVOKED").await;
    }
    assert_eq!(a.me(&stranger.access).await.status(), 200, "other users keep their sessions");
}

#[tokio::test]
async fn a_refresh_token_works_once_and_its_reuse_revokes_the_session() {
    let app = app().config(|c| c.get_mut::<app_auth::AuthConfig>().refresh_race_grace = Duration::ZERO).spawn().await;
    let (_, first) = app.user().await;
    let resp = app.refresh(&first.refresh).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["set-cookie"].to_str().expect("ascii").starts_with("refresh_token=rt1."));
    let second = Tokens::from_json(&resp.json().await.expect("json"));
    assert_eq!(second.session_id, first.session_id, "rotation keeps the session");
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(app.me(&second.access).await.status(), 200);

    assert_problem(app.refresh(&first.refresh).await, 401, "REFRESH_TOKEN_REUSED").await;
    // The whole session is gone: the newest tokens stop working too.
    assert_problem(app.refresh(&second.refresh).await, 401, "SESSION_REVOKED").await;
    assert_problem(app.me(&second.access).await, 401, "SESSION_REVOKED").await;
}

#[tokio::test]
async fn racing_refreshes_never_fork_the_session_and_all_get_the_same_refresh_token() {
    let first = spawn_app().await;
    let second = app().instance_of(&first).spawn().await;
    let (account, tokens) = first.user().await;
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let base = if i % 2 == 0 { &first.base } else { &second.base };
            let (http, url, token) =
                (first.http.clone(), format!("{base}/api/v1/auth/refresh"), tokens.refresh.clone());
            tokio::spawn(
                async move { http.post(url).json(&json!({"refreshToken": token})).send().await.expect("sent") },
            )
        })
        .collect();
    let mut refreshed = Vec::new();
    for racer in racers {
        let resp = racer.await.expect("task");
        assert_eq!(resp.status(), 200, "two tabs (and instances) racing both succeed");
        refreshed.push(Tokens::from_json(&resp.json().await.expect("json")));
    }
    assert!(refreshed.iter().all(|t| t.refresh == refreshed[0].refresh), "one successor, no fork");
    assert!(refreshed.iter().all(|t| t.session_id == tokens.session_id));
    assert_eq!(first.refresh(&refreshed[0].refresh).await.status(), 200, "the successor is the live token");
    let again = first.logged_in(&account).await;
    let list: Value =
        first.authed(Method::GET, "/api/v1/auth/sessions", &again.access).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().expect("array").len(), 2, "one session per login, none forked");
}

#[tokio::test]
async fn refresh_accepts_the_cookie_and_refuses_access_tokens() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let resp = app
        .request(Method::POST, "/api/v1/auth/refresh")
        .header("cookie", format!("theme=dark; refresh_token={}", tokens.refresh))
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let fresh = Tokens::from_json(&resp.json().await.expect("json"));
    assert_problem(app.refresh(&fresh.access).await, 401, "UNAUTHENTICATED").await;
    assert_problem(app.post_json("/api/v1/auth/refresh", json!({})).await, 400, "VALIDATION_FAILED").await;
}

fn forge(header: Value, claims: Value, key: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    match alg {
        jsonwebtoken::Algorithm::HS256 | jsonwebtoken::Algorithm::HS512 => {
            let mut h = jsonwebtoken::Header::new(alg);
            h.typ = header["typ"].as_str().map(str::to_owned);
            jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(key)).expect("sign")
        }
        _ => format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string())),
    }
}

#[tokio::test]
async fn forged_and_mistyped_tokens_are_401() {
    let app = spawn_app().await;
    let (account, tokens) = app.user().await;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(tokens.access.split('.').nth(1).expect("payload")).expect("base64"),
    )
    .expect("json claims");
    assert_eq!(payload["sub"], account.id.as_str());
    assert_eq!(payload["sid"], tokens.session_id.as_str());
    assert_eq!(payload["typ"], "access");
    for claim in ["iss", "aud", "exp", "iat"] {
        assert!(!payload[claim].is_null(), "{claim}");
    }
    let key = app::config::DEV_JWT_SECRET.as_bytes();
    let typ = json!({"typ": "at+jwt"});

    let alg_none = forge(json!({"alg": "none", "typ": "at+jwt"}), payload.clone(), b"", jsonwebtoken::Algorithm::RS256);
    let wrong_alg = forge(typ.clone(), payload.clone(), key, jsonwebtoken::Algorithm::HS512);
    let other_key =
        forge(typ.clone(), payload.clone(), b"another key that is long enough!!", jsonwebtoken::Algorithm::HS256);
    let mut tampered_claims = payload.clone();
    tampered_claims["sub"] = json!(uuid::Uuid::now_v7().to_string());
    let mut parts: Vec<String> = tokens.access.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(tampered_claims.to_string());
    let tampered = parts.join(".");
    let mut untyped_claims = payload.clone();
    untyped_claims["typ"] = json!("refresh");
    let untyped = forge(typ.clone(), untyped_claims, key, jsonwebtoken::Algorithm::HS256);
    let mut expired_claims = payload.clone();
    expired_claims["exp"] = json!(1_000_000_000u64);
    let expired = forge(typ, expired_claims, key, jsonwebtoken::Algorithm::HS256);

    for (what, token) in [
        ("alg none", alg_none.as_str()),
        ("HS512", wrong_alg.as_str()),
        ("another key", other_key.as_str()),
        ("tampered payload", tampered.as_str()),
        ("typ refresh", untyped.as_str()),
        ("the refresh token", tokens.refresh.as_str()),
        ("garbage", "abc"),
    ] {
        let resp = app.me(token).await;
        assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{what}");
        assert_problem(resp, 401, "UNAUTHENTICATED").await;
    }
    assert_problem(app.me(&expired).await, 401, "TOKEN_EXPIRED").await;
    let no_header = app.get("/api/v1/users/me").await;
    assert_eq!(no_header.headers()["www-authenticate"], "Bearer");
    assert_problem(no_header, 401, "UNAUTHENTICATED").await;
    let in_query = app.get(&format!("/api/v1/users/me?access_token={}", tokens.access)).await;
    assert_problem(in_query, 401, "UNAUTHENTICATED").await;
    assert_eq!(app.me(&tokens.access).await.status(), 200, "the genuine token still works");
}

#[tokio::test]
async fn a_tampered_or_transplanted_session_blob_is_401_and_keys_share_the_users_hash_tag() {
    let app = spawn_app().await;
    let redis = RedisServer::shared();
    let (account, first) = app.user().await;
    let second = app.logged_in(&account).await;
    let base = format!("{}sess:{{u:{}}}:", app.prefix, account.id);
    for key in [format!("{base}{}", first.session_id), format!("{base}index")] {
        assert_eq!(redis.command(&["EXISTS", &key]).trim(), ":1", "{key} exists");
        let ttl = redis.pttl(&key);
        assert!(ttl > 0, "{key} carries a TTL");
    }
    // Session data is encrypted at rest: no user id, ip or user agent in clear.
    let raw = redis.command(&["HGET", &format!("{base}{}", first.session_id), "d"]);
    assert!(!raw.contains(&account.id) && !raw.contains("127.0.0.1"), "{raw}");

    // A blob copied from another session does not decrypt (the session id is bound in).
    let copy = "local d = redis.call('HGET', KEYS[1], 'd') redis.call('HSET', KEYS[2], 'd', d) return 1";
    redis.command(&[
        "EVAL",
        copy,
        "2",
        &format!("{base}{}", first.session_id),
        &format!("{base}{}", second.session_id),
    ]);
    assert_problem(app.me(&second.access).await, 401, "SESSION_REVOKED").await;
    // A flipped byte does not decrypt either.
    let flip = "local d = redis.call('HGET', KEYS[1], 'd') \
        local b = string.byte(d, 30) \
        redis.call('HSET', KEYS[1], 'd', string.sub(d, 1, 29) .. string.char((b + 1) % 256) .. string.sub(d, 31)) return 1";
    redis.command(&["EVAL", flip, "1", &format!("{base}{}", first.session_id)]);
    assert_problem(app.me(&first.access).await, 401, "SESSION_REVOKED").await;
}

#[tokio::test]
async fn idle_and_absolute_session_timeouts_are_enforced() {
    let idle = app()
        .config(|c| c.get_mut::<app_auth::AuthConfig>().session_idle_timeout = Duration::from_millis(1500))
        .spawn()
        .await;
    let (_, tokens) = idle.user().await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(idle.me(&tokens.access).await.status(), 200, "use keeps the session alive");
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_problem(idle.me(&tokens.access).await, 401, "SESSION_REVOKED").await;

    let absolute = app()
        .config(|c| c.get_mut::<app_auth::AuthConfig>().session_absolute_timeout = Duration::from_secs(2))
        .spawn()
        .await;
    let account = absolute.signed_up().await;
    let login = Instant::now();
    let tokens = absolute.logged_in(&account).await;
    let ended =
        eventually(Duration::from_secs(6), || async { absolute.me(&tokens.access).await.status() == 401 }).await;
    assert!(ended, "the session ends at its absolute deadline although it is in use");
    assert!(login.elapsed() >= Duration::from_millis(1900), "not before it: {:?}", login.elapsed());
}

#[tokio::test]
async fn the_role_guard_answers_403_and_admins_revoke_a_users_sessions() {
    let app = spawn_app().await;
    let (user, user_tokens) = app.user().await;
    let (admin, admin_tokens) = app.admin().await;
    let path = format!("/api/v1/users/{}", admin.id);
    assert_problem(app.authed(Method::GET, &path, &user_tokens.access).send().await.unwrap(), 403, "FORBIDDEN").await;
    let resp =
        app.authed(Method::GET, &format!("/api/v1/users/{}", user.id), &admin_tokens.access).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["email"], user.email.as_str());
    let missing = format!("/api/v1/users/{}", uuid::Uuid::now_v7());
    assert_problem(app.authed(Method::GET, &missing, &admin_tokens.access).send().await.unwrap(), 404, "NOT_FOUND")
        .await;

    let revoke = format!("/api/v1/admin/users/{}/sessions", user.id);
    assert_problem(app.authed(Method::DELETE, &revoke, &user_tokens.access).send().await.unwrap(), 403, "FORBIDDEN")
        .await;
    let resp = app.authed(Method::DELETE, &revoke, &admin_tokens.access).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_problem(app.me(&user_tokens.access).await, 401, "SESSION_REVOKED").await;
    assert_eq!(app.me(&admin_tokens.access).await.status(), 200);
}

#[tokio::test]
async fn changing_a_role_or_deleting_a_user_ends_their_sessions() {
    use app_auth::AuthService;
    use shaku::HasComponent;
    let app = spawn_app().await;
    let (user, tokens) = app.user().await;
    let id = uuid::Uuid::parse_str(&user.id).expect("uuid");
    let container = app.container::<app_auth::AuthContainer>();
    let auth: &dyn AuthService = container.resolve_ref();
    auth.set_role(id, app_core::Role::Admin).await.expect("role changed");
    assert_problem(app.me(&tokens.access).await, 401, "SESSION_REVOKED").await;
    let tokens = app.logged_in(&user).await;
    let me: Value = app.me(&tokens.access).await.json().await.unwrap();
    assert_eq!(me["role"], "admin", "the new role applies from the next login");
    auth.delete_user(id).await.expect("deleted");
    assert_problem(app.me(&tokens.access).await, 401, "SESSION_REVOKED").await;
    assert_problem(app.login(&user.email, &user.password).await, 401, "INVALID_CREDENTIALS").await;
}

#[tokio::test]
async fn guarded_routes_answer_503_quickly_while_redis_is_down_and_recover() {
    let redis = RedisServer::start();
    let app = app().backend(Backend::Redis(redis.url())).spawn().await;
    let (_, tokens) = app.user().await;
    redis.freeze();
    let started = Instant::now();
    let resp = app.me(&tokens.access).await;
    let waited = started.elapsed();
    let body = assert_problem(resp, 503, "DEPENDENCY_UNAVAILABLE").await;
    assert!(!body.to_string().contains("127.0.0.1"), "no internals: {body}");
    assert!(waited < Duration::from_secs(3), "bounded by the command timeout: {waited:?}");
    assert_problem(app.login("someone@example.com", "whatever pass").await, 401, "INVALID_CREDENTIALS").await;
    redis.thaw();
    assert!(
        eventually(Duration::from_secs(10), || async { app.me(&tokens.access).await.status() == 200 }).await,
        "recovers by itself with the same session"
    );
}

#[tokio::test]
async fn the_memory_backend_serves_the_same_flows() {
    let app = app().backend(Backend::Memory).spawn().await;
    let (_, tokens) = app.user().await;
    assert_eq!(app.me(&tokens.access).await.status(), 200);
    let resp = app.refresh(&tokens.refresh).await;
    assert_eq!(resp.status(), 200);
    let resp = app.authed(Method::POST, "/api/v1/auth/logout", &tokens.access).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_problem(app.me(&tokens.access).await, 401, "SESSION_REVOKED").await;
}

#[tokio::test]
async fn the_profile_can_be_renamed_and_blank_names_are_refused() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let resp = app
        .authed(Method::PATCH, "/api/v1/users/me", &tokens.access)
        .json(&json!({"name": " Zoe "}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["name"], "Zoe");
    assert_eq!(app.me(&tokens.access).await.json::<Value>().await.unwrap()["name"], "Zoe");
    let resp = app
        .authed(Method::PATCH, "/api/v1/users/me", &tokens.access)
        .json(&json!({"name": "   "}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400, "VALIDATION_FAILED").await;
    let resp = app
        .authed(Method::PATCH, "/api/v1/users/me", &tokens.access)
        .json(&json!({"name": "x".repeat(101)}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn accounts_and_sessions_work_on_postgres() {
    let Some(database) = app_core::testing::TestDatabase::postgres().await else { return };
    let app = app().database(database).spawn().await;
    let (account, tokens) = app.user().await;
    let me: Value = app.me(&tokens.access).await.json().await.expect("json");
    assert_eq!(me["email"], account.email.as_str());
    assert_problem(app.register(&account.email.to_uppercase(), "another password", "X").await, 409, "EMAIL_TAKEN")
        .await;
}

#[tokio::test]
async fn a_stopped_redis_gives_503_and_login_works_again_once_it_is_back() {
    let redis = RedisServer::start();
    let app = app().backend(Backend::Redis(redis.url())).spawn().await;
    let (account, tokens) = app.user().await;
    redis.stop();
    let started = Instant::now();
    assert_problem(app.me(&tokens.access).await, 503, "DEPENDENCY_UNAVAILABLE").await;
    assert_problem(app.login(&account.email, &account.password).await, 503, "DEPENDENCY_UNAVAILABLE").await;
    assert!(started.elapsed() < Duration::from_secs(5), "fast failures: {:?}", started.elapsed());
    redis.restart();
    // The restarted server kept nothing (no persistence in tests): the old session is gone, and
    // a new login works without restarting the app.
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.login(&account.email, &account.password).await.status() == 200
        })
        .await,
        "login recovers by itself"
    );
    let fresh = app.logged_in(&account).await;
    assert_eq!(app.me(&fresh.access).await.status(), 200);
    assert_problem(app.me(&tokens.access).await, 401, "SESSION_REVOKED").await;
}
