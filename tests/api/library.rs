//! The library over HTTP: CRUD, validation, pagination and search, cache invalidation on one and
//! two instances, stampedes, corrupt entries, edit locks and a cache Redis that goes away.

use std::time::Duration;

use app_core::testing::RedisServer;
use serde_json::{Value, json};

use crate::support::{TestApp, app, assert_problem, spawn_app};

fn id(item: &Value) -> String {
    item["id"].as_str().expect("id").to_owned()
}

fn titles(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|i| i["title"].as_str().expect("title").to_owned()).collect()
}

#[tokio::test]
async fn an_item_is_created_read_changed_and_deleted() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let resp = app
        .create_item(
            &tokens.access,
            json!({"type": "album", "title": " Kind of Blue ", "artist": "Miles Davis", "durationSeconds": 2760,
                   "tags": ["jazz", "Jazz", "modal"]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
    let item: Value = resp.json().await.expect("json");
    assert_eq!(location, format!("/api/v1/library/{}", id(&item)));
    assert_eq!(item["title"], "Kind of Blue", "trimmed");
    assert_eq!(item["tags"], json!(["jazz", "modal"]), "duplicates dropped, ignoring case");
    assert!(item.get("album").is_none(), "absent fields are omitted");
    assert!(item["createdAt"].as_str().expect("createdAt").ends_with('Z'));

    let read: Value = app.get_item(&tokens.access, &id(&item)).await.json().await.expect("json");
    assert_eq!(read, item);

    let resp = app
        .patch_item(
            &tokens.access,
            &id(&item),
            None,
            json!({"title": "Kind of Blue (Legacy)", "artist": null, "album": "KoB"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let changed: Value = resp.json().await.expect("json");
    assert_eq!((changed["title"].as_str(), changed["album"].as_str()), (Some("Kind of Blue (Legacy)"), Some("KoB")));
    assert!(changed.get("artist").is_none(), "null cleared it");
    assert_eq!(changed["durationSeconds"], 2760, "absent fields stay");
    assert_eq!(app.get_item(&tokens.access, &id(&item)).await.json::<Value>().await.expect("json"), changed);

    assert_eq!(app.delete_item(&tokens.access, &id(&item), None).await.status(), 204);
    assert_problem(app.get_item(&tokens.access, &id(&item)).await, 404, "NOT_FOUND").await;
    assert_problem(app.delete_item(&tokens.access, &id(&item), None).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn another_users_item_is_a_404_everywhere() {
    let app = spawn_app().await;
    let (_, owner) = app.user().await;
    let (_, other) = app.user().await;
    let item = id(&app.song(&owner.access, "Mine").await);
    assert_problem(app.get_item(&other.access, &item).await, 404, "NOT_FOUND").await;
    assert_problem(app.patch_item(&other.access, &item, None, json!({"title": "x"})).await, 404, "NOT_FOUND").await;
    assert_problem(app.delete_item(&other.access, &item, None).await, 404, "NOT_FOUND").await;
    assert_problem(app.lock_item(&other.access, &item).await, 404, "NOT_FOUND").await;
    assert_problem(app.lock_status(&other.access, &item).await, 404, "NOT_FOUND").await;
    assert_eq!(app.page(&other.access, "").await["total"], 0, "lists are per user");
    assert_eq!(app.page(&owner.access, "").await["total"], 1);
    assert_eq!(app.get_item(&owner.access, &item).await.status(), 200, "the owner still has it");
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let long = "x".repeat(201);
    let too_many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    for (body, code) in [
        (json!({"type": "movie", "title": "x"}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": ["x"]}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": 123}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": true}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": null}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "artist": null}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "durationSeconds": "long"}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "tags": [{"a": 1}]}), "VALIDATION_FAILED"),
        (json!({"type": "song"}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "durationSeconds": -1}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "   "}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": long}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "artist": long}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "durationSeconds": 0}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "tags": too_many}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "tags": [""]}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "a\u{0}b"}), "VALIDATION_FAILED"),
        (json!({"type": "song", "title": "x", "artist": "tab\there"}), "VALIDATION_FAILED"),
    ] {
        let resp = app.create_item(&tokens.access, body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let problem = assert_problem(resp, 400, code).await;
        assert!(!problem.to_string().contains(&long), "values are not echoed: {body}");
    }
    let problem = assert_problem(
        app.create_item(&tokens.access, json!({"type": "song", "title": long})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "title");
    assert_eq!(app.page(&tokens.access, "").await["total"], 0, "nothing was written");

    for query in [
        "page=0",
        "page=9223372036854775807",
        "page=99999999999999999999999",
        "page=abc",
        "pageSize=0",
        "pageSize=101",
        "type=movie",
        "q=%00",
        &format!("q={}", "q".repeat(101)),
    ] {
        assert_eq!(app.list_items(&tokens.access, query).await.status(), 400, "{query}");
    }
    let item = id(&app.song(&tokens.access, "Song").await);
    assert_problem(app.patch_item(&tokens.access, &item, None, json!({"title": ""})).await, 400, "VALIDATION_FAILED")
        .await;
    let problem = assert_problem(
        app.patch_item(&tokens.access, &item, None, json!({"tags": "rock"})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(problem["errors"][0], json!({"field": "tags", "message": "must be an array or null"}));
    assert_problem(app.get_item(&tokens.access, "not-a-uuid").await, 400, "VALIDATION_FAILED").await;
    assert_eq!(app.get_item(&tokens.access, &item).await.json::<Value>().await.expect("json")["title"], "Song");
}

#[tokio::test]
async fn server_owned_fields_in_the_body_are_ignored() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let (victim, victim_tokens) = app.user().await;
    let resp = app
        .create_item(
            &tokens.access,
            json!({"type": "song", "title": "x", "ownerId": victim.id, "id": "0193f2c4-0000-7000-8000-000000000001",
                   "createdAt": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let item: Value = resp.json().await.expect("json");
    assert_ne!(item["id"], "0193f2c4-0000-7000-8000-000000000001");
    assert!(!item["createdAt"].as_str().expect("createdAt").starts_with("2000"));
    assert_eq!(app.page(&tokens.access, "").await["total"], 1, "the caller owns it");
    assert_eq!(app.page(&victim_tokens.access, "").await["total"], 0);
    let resp = app.patch_item(&tokens.access, &id(&item), None, json!({"ownerId": victim.id})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.page(&victim_tokens.access, "").await["total"], 0, "ownership never moves");
}

#[tokio::test]
async fn pages_and_totals_follow_every_write() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    for title in ["one", "two", "three"] {
        app.song(&tokens.access, title).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = app.page(&tokens.access, "page=1&pageSize=2").await;
    assert_eq!(
        (first["total"].as_u64(), first["page"].as_u64(), first["pageSize"].as_u64()),
        (Some(3), Some(1), Some(2))
    );
    assert_eq!(titles(&first), ["three", "two"], "newest first");
    assert_eq!(titles(&app.page(&tokens.access, "page=2&pageSize=2").await), ["one"]);
    assert!(
        titles(&app.page(&tokens.access, "page=3&pageSize=2").await).is_empty(),
        "past the end: empty, not an error"
    );

    // Cached now; a new item must appear on page 1 and move "two" to page 2.
    let four = app.song(&tokens.access, "four").await;
    let first = app.page(&tokens.access, "page=1&pageSize=2").await;
    assert_eq!((titles(&first), first["total"].as_u64()), (vec!["four".to_owned(), "three".to_owned()], Some(4)));
    assert_eq!(titles(&app.page(&tokens.access, "page=2&pageSize=2").await), ["two", "one"]);

    app.patch_item(&tokens.access, &id(&four), None, json!({"title": "FOUR"})).await;
    assert_eq!(titles(&app.page(&tokens.access, "page=1&pageSize=2").await)[0], "FOUR");
    app.delete_item(&tokens.access, &id(&four), None).await;
    let first = app.page(&tokens.access, "page=1&pageSize=2").await;
    assert_eq!((titles(&first), first["total"].as_u64()), (vec!["three".to_owned(), "two".to_owned()], Some(3)));
}

#[tokio::test]
async fn search_and_type_filters_match_case_insensitively_and_literally() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    app.create_item(&tokens.access, json!({"type": "song", "title": "Blue in Green", "artist": "Miles Davis"})).await;
    app.create_item(&tokens.access, json!({"type": "album", "title": "Blue Train", "artist": "John Coltrane"})).await;
    app.create_item(&tokens.access, json!({"type": "song", "title": "100% Pure", "artist": "Élodie"})).await;
    app.create_item(&tokens.access, json!({"type": "podcast", "title": "a_b"})).await;
    assert_eq!(app.page(&tokens.access, "q=BLUE").await["total"], 2);
    assert_eq!(app.page(&tokens.access, "q=blue&type=album").await["total"], 1);
    assert_eq!(app.page(&tokens.access, "q=%20%20miles%20%20").await["total"], 1, "by artist, spaces trimmed");
    assert_eq!(app.page(&tokens.access, "q=%C3%89LODIE").await["total"], 1, "non-ASCII case folding");
    assert_eq!(app.page(&tokens.access, "q=%25").await["total"], 1, "`%` matches itself only");
    assert_eq!(app.page(&tokens.access, "q=_").await["total"], 1, "`_` matches itself only");
    assert_eq!(app.page(&tokens.access, "type=song").await["total"], 2);
}

#[tokio::test]
async fn every_write_is_seen_by_the_next_read_on_any_instance() {
    let a = spawn_app().await;
    let b = app().instance_of(&a).spawn().await;
    let (_, tokens) = a.user().await;
    let item = id(&a.song(&tokens.access, "v0").await);
    // Readers on both instances keep the cache busy (and race every write with a fill).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = [a.base.clone(), b.base.clone()]
        .into_iter()
        .map(|base| {
            let (stop, token, item, http) = (stop.clone(), tokens.access.clone(), item.clone(), a.http.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5_000 {
                    let _ = http.get(format!("{base}/api/v1/library/{item}")).bearer_auth(&token).send().await;
                    let _ = http.get(format!("{base}/api/v1/library?pageSize=5")).bearer_auth(&token).send().await;
                    n += 1;
                }
            })
        })
        .collect();
    for i in 1..=100 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let title = format!("v{i}");
        let resp = writer.patch_item(&tokens.access, &item, None, json!({"title": title})).await;
        assert_eq!(resp.status(), 200, "write {i}");
        let read: Value = reader.get_item(&tokens.access, &item).await.json().await.expect("json");
        assert_eq!(read["title"], title, "item read {i} on the other instance");
        let page = reader.page(&tokens.access, "pageSize=5").await;
        assert_eq!(titles(&page), std::slice::from_ref(&title), "page read {i} on the other instance");
        let again: Value = writer.get_item(&tokens.access, &item).await.json().await.expect("json");
        assert_eq!(again["title"], title, "item read {i} on the writing instance");
    }
    // Concurrent writers, each on its own item, on both instances: every write is seen at once.
    let mut writers = Vec::new();
    for w in 0..6 {
        let (a_base, b_base, http, token) = (a.base.clone(), b.base.clone(), a.http.clone(), tokens.access.clone());
        let created: Value = a.song(&tokens.access, &format!("w{w}")).await;
        let item = id(&created);
        writers.push(tokio::spawn(async move {
            for i in 0..10 {
                let (write, read) = if (w + i) % 2 == 0 { (&a_base, &b_base) } else { (&b_base, &a_base) };
                let title = format!("w{w}-{i}");
                let resp = http
                    .patch(format!("{write}/api/v1/library/{item}"))
                    .bearer_auth(&token)
                    .json(&json!({"title": title}))
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(resp.status(), 200, "writer {w} write {i}");
                let seen: Value = http
                    .get(format!("{read}/api/v1/library/{item}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("sent")
                    .json()
                    .await
                    .expect("json");
                assert_eq!(seen["title"], title, "writer {w} read {i}");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.expect("reader");
    }
}

async fn loads(app: &TestApp, namespace: &str) -> f64 {
    app.metric("cache_loads_total", &format!("namespace=\"{namespace}\"")).await
}

#[tokio::test]
async fn reads_hit_the_cache_and_admins_see_the_counts() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, tokens) = app.user().await;
    let item = id(&app.song(&tokens.access, "Song").await);
    let before = app.cache_stats(&admin.access).await;
    for _ in 0..3 {
        assert_eq!(app.get_item(&tokens.access, &item).await.status(), 200);
        assert_eq!(app.me(&tokens.access).await.status(), 200);
    }
    let after = app.cache_stats(&admin.access).await;
    let delta =
        |ns: &str, field: &str| after[ns][field].as_u64().expect("count") - before[ns][field].as_u64().expect("count");
    assert_eq!((delta("lib", "misses"), delta("lib", "hits"), delta("lib", "loads")), (1, 2, 1));
    // Login read the profile (through the cache) already, so every read here is a hit.
    assert_eq!((delta("user", "misses"), delta("user", "hits")), (0, 3), "profiles are cached too");
    let rate = after["lib"]["hitRate"].as_f64().expect("rate");
    assert!(rate > 0.0 && rate <= 1.0);
    assert_problem(
        app.authed(reqwest::Method::GET, "/api/v1/admin/cache", &tokens.access).send().await.expect("sent"),
        403,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn a_hundred_concurrent_misses_query_the_database_once_across_two_instances() {
    let a = spawn_app().await;
    let b = app().instance_of(&a).spawn().await;
    let (_, tokens) = a.user().await;
    for i in 0..3 {
        a.song(&tokens.access, &format!("s{i}")).await;
    }
    let before = loads(&a, "lib").await + loads(&b, "lib").await;
    let requests: Vec<_> = (0..100)
        .map(|i| {
            let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
            let (http, token) = (a.http.clone(), tokens.access.clone());
            tokio::spawn(async move {
                let resp =
                    http.get(format!("{base}/api/v1/library?page=1&pageSize=10")).bearer_auth(token).send().await;
                let page: Value = resp.expect("sent").json().await.expect("json");
                page["total"].as_u64()
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.expect("task"), Some(3));
    }
    let after = loads(&a, "lib").await + loads(&b, "lib").await;
    assert_eq!(after - before, 1.0, "one database query for 100 concurrent misses");
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_replaced_with_the_right_answer() {
    let app = spawn_app().await;
    let (account, tokens) = app.user().await;
    assert_eq!(app.me(&tokens.access).await.status(), 200, "cached now");
    let server = RedisServer::shared();
    let scope = format!("{}cache:user.v1:{{u:{}}}", app.prefix, account.id);
    let generation = server.command(&["GET", &format!("{scope}:~gen")]);
    let generation = generation.lines().nth(1).unwrap_or("0").trim().to_owned();
    for garbage in [format!("{generation}:\u{1}\u{2}not msgpack"), "no header".to_owned()] {
        server.command(&["SET", &format!("{scope}:profile"), &garbage, "EX", "60"]);
        // A fresh instance: it has no copy of the entry in process, so it reads the garbage.
        let other = crate::support::app().instance_of(&app).spawn().await;
        let me: Value = other.me(&tokens.access).await.json().await.expect("json");
        assert_eq!(me["email"], account.email.as_str(), "{garbage:?}");
    }
    let stored = server.command(&["GET", &format!("{scope}:profile")]);
    assert!(!stored.contains("not msgpack") && !stored.contains("no header"), "replaced: {stored}");
}

#[tokio::test]
async fn an_edit_lock_guards_writes_until_released() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let item = id(&app.song(&tokens.access, "Song").await);
    let resp = app.lock_item(&tokens.access, &item).await;
    assert_eq!(resp.status(), 201);
    let grant: Value = resp.json().await.expect("json");
    let token = grant["lockToken"].as_str().expect("lockToken").to_owned();
    assert!(grant["fencingToken"].as_u64().expect("fencingToken") > 0);
    assert_eq!(grant["expiresIn"], 60);

    let busy = assert_problem(app.lock_item(&tokens.access, &item).await, 423, "LOCKED").await;
    assert!(busy["retryAfter"].as_u64().expect("retryAfter") <= 60);
    let status: Value = app.lock_status(&tokens.access, &item).await.json().await.expect("json");
    assert_eq!((status["locked"].as_bool(), status["heldByMe"].as_bool()), (Some(true), Some(true)));

    assert_problem(app.patch_item(&tokens.access, &item, None, json!({"title": "x"})).await, 423, "LOCKED").await;
    assert_problem(app.delete_item(&tokens.access, &item, None).await, 423, "LOCKED").await;
    let wrong = "0".repeat(32);
    assert_problem(app.patch_item(&tokens.access, &item, Some(&wrong), json!({"title": "x"})).await, 423, "LOCKED")
        .await;
    assert_problem(app.extend_lock(&tokens.access, &item, &wrong).await, 409, "LOCK_NOT_HELD").await;
    assert_problem(app.unlock_item(&tokens.access, &item, &wrong).await, 409, "LOCK_NOT_HELD").await;

    let resp = app.patch_item(&tokens.access, &item, Some(&token), json!({"title": "Locked edit"})).await;
    assert_eq!(resp.status(), 200);
    let resp = app.extend_lock(&tokens.access, &item, &token).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json")["expiresIn"], 60);
    assert_eq!(app.unlock_item(&tokens.access, &item, &token).await.status(), 204);

    let status: Value = app.lock_status(&tokens.access, &item).await.json().await.expect("json");
    assert_eq!((status["locked"].as_bool(), status["expiresIn"].as_u64()), (Some(false), Some(0)));
    assert_problem(
        app.patch_item(&tokens.access, &item, Some(&token), json!({"title": "late"})).await,
        409,
        "LOCK_NOT_HELD",
    )
    .await;
    assert_problem(app.unlock_item(&tokens.access, &item, &token).await, 409, "LOCK_NOT_HELD").await;
    assert_eq!(app.get_item(&tokens.access, &item).await.json::<Value>().await.expect("json")["title"], "Locked edit");
    let resp = app.patch_item(&tokens.access, &item, None, json!({"title": "Unlocked edit"})).await;
    assert_eq!(resp.status(), 200, "free again: the PATCH takes its own short lock");
}

#[tokio::test]
async fn fifty_concurrent_lock_requests_on_two_instances_have_one_winner() {
    let a = spawn_app().await;
    let b = app().instance_of(&a).spawn().await;
    let (_, tokens) = a.user().await;
    let item = id(&a.song(&tokens.access, "Song").await);
    let attempts: Vec<_> = (0..50)
        .map(|i| {
            let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
            let (http, token, item) = (a.http.clone(), tokens.access.clone(), item.clone());
            tokio::spawn(async move {
                let resp = http.post(format!("{base}/api/v1/library/{item}/lock")).bearer_auth(token).send().await;
                resp.expect("sent").status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("task"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 423).count(), 49, "{statuses:?}");
}

#[tokio::test]
async fn an_expired_lock_cannot_write_after_someone_else_took_the_item() {
    let app =
        app().config(|c| c.get_mut::<app_library::LibraryConfig>().lock_ttl = Duration::from_secs(1)).spawn().await;
    let (_, tokens) = app.user().await;
    let item = id(&app.song(&tokens.access, "Song").await);
    let old: Value = app.lock_item(&tokens.access, &item).await.json().await.expect("json");
    let old_token = old["lockToken"].as_str().expect("token").to_owned();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let new: Value = app.lock_item(&tokens.access, &item).await.json().await.expect("json");
    let new_token = new["lockToken"].as_str().expect("token (the old lock expired)").to_owned();
    assert!(new["fencingToken"].as_u64() > old["fencingToken"].as_u64());
    assert_problem(
        app.patch_item(&tokens.access, &item, Some(&old_token), json!({"title": "stale"})).await,
        423,
        "LOCKED",
    )
    .await;
    assert_problem(app.extend_lock(&tokens.access, &item, &old_token).await, 409, "LOCK_NOT_HELD").await;
    assert_eq!(app.patch_item(&tokens.access, &item, Some(&new_token), json!({"title": "new"})).await.status(), 200);
    assert_eq!(app.get_item(&tokens.access, &item).await.json::<Value>().await.expect("json")["title"], "new");
}

#[tokio::test]
async fn with_the_cache_redis_stopped_reads_and_writes_still_work_and_recover() {
    let cache_server = RedisServer::start();
    let url = cache_server.url();
    let app = app().config(move |c| c.get_mut::<app_cache::CacheConfig>().redis_url = Some(url)).spawn().await;
    let (_, admin) = app.admin().await;
    let (_, tokens) = app.user().await;
    let item = id(&app.song(&tokens.access, "before").await);
    app.page(&tokens.access, "").await;
    app.get_item(&tokens.access, &item).await;

    cache_server.stop();
    let started = std::time::Instant::now();
    assert_eq!(titles(&app.page(&tokens.access, "").await), ["before"]);
    assert_eq!(app.get_item(&tokens.access, &item).await.status(), 200);
    let resp = app.patch_item(&tokens.access, &item, None, json!({"title": "during"})).await;
    assert_eq!(resp.status(), 200, "the write commits; its invalidation is logged");
    assert_eq!(titles(&app.page(&tokens.access, "").await), ["during"], "read from the database");
    assert_eq!(app.me(&tokens.access).await.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3), "no command timeout per read: {:?}", started.elapsed());

    cache_server.restart();
    let healed = app_core::testing::eventually(Duration::from_secs(10), || async {
        app.page(&tokens.access, "").await;
        let stats = app.cache_stats(&admin.access).await;
        let before = stats["lib"]["hits"].as_u64();
        app.page(&tokens.access, "").await;
        app.cache_stats(&admin.access).await["lib"]["hits"].as_u64() > before
    })
    .await;
    assert!(healed, "the cache is used again without a restart");
    assert_eq!(titles(&app.page(&tokens.access, "").await), ["during"]);
}

#[tokio::test]
async fn the_memory_backend_caches_and_locks_too() {
    let app = app().backend(crate::support::Backend::Memory).spawn().await;
    let (_, tokens) = app.user().await;
    let item = id(&app.song(&tokens.access, "Song").await);
    assert_eq!(app.page(&tokens.access, "").await["total"], 1);
    app.song(&tokens.access, "Another").await;
    assert_eq!(app.page(&tokens.access, "").await["total"], 2, "invalidated in memory too");
    assert_eq!(app.lock_item(&tokens.access, &item).await.status(), 201);
    assert_problem(app.lock_item(&tokens.access, &item).await, 423, "LOCKED").await;
}

#[tokio::test]
async fn a_full_library_answers_409_quota_exceeded_and_other_users_are_unaffected() {
    let app = app().config(|c| c.get_mut::<app_library::LibraryConfig>().max_items_per_user = 3).spawn().await;
    let (_, full) = app.user().await;
    let (_, other) = app.user().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(id(&app.song(&full.access, &format!("s{n}")).await));
    }
    let resp = app.create_item(&full.access, json!({"type": "song", "title": "one too many"})).await;
    let problem = assert_problem(resp, 409, "QUOTA_EXCEEDED").await;
    assert_eq!(problem["quota"], "library.max_items_per_user");
    assert!(problem["detail"].as_str().expect("detail").contains('3'), "{problem}");
    assert_eq!(app.page(&full.access, "").await["total"], 3, "nothing was added");
    assert_eq!(app.create_item(&other.access, json!({"type": "song", "title": "mine"})).await.status(), 201);

    // A delete frees a place; an import fills the library up to its quota and names the rest.
    assert_eq!(app.delete_item(&full.access, &ids[0], None).await.status(), 204);
    let items =
        json!([{"type": "song", "title": "i0"}, {"type": "song", "title": " "}, {"type": "song", "title": "i2"}]);
    let job = app.job(&full.access, "library.import", json!({"items": items})).await;
    assert_eq!(app.finished_job(&full.access, &id(&job)).await["status"], "completed");
    let report: Value = app.job_result(&full.access, &id(&job)).await.json().await.expect("json");
    assert_eq!(report["imported"], 1);
    let failed: Vec<(u64, &str)> = report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| (f["index"].as_u64().expect("index"), f["code"].as_str().expect("code")))
        .collect();
    assert_eq!(failed, [(1, "VALIDATION_FAILED"), (2, "QUOTA_EXCEEDED")]);
    assert_eq!(app.page(&full.access, "").await["total"], 3);
}
