//! Behaviour of the managed connection against a real `redis-server` that the tests stop,
//! freeze and restart.

use std::time::{Duration, Instant};

use app_core::testing::{RedisServer, eventually};

use crate::{PubSub, Redis, RedisError, RedisPubSub, Reply, testing::config};

const PATIENCE: Duration = Duration::from_secs(10);

/// A private server (these tests stop, freeze or count it) and a client connected to it.
async fn connected() -> (RedisServer, Redis) {
    let server = RedisServer::start();
    let redis = Redis::connect(&config(server.url())).expect("client");
    assert!(redis.wait_connected(PATIENCE).await);
    (server, redis)
}

#[tokio::test]
async fn starts_while_redis_is_down_and_connects_when_it_appears() {
    let server = RedisServer::start();
    server.stop();
    let redis = Redis::connect(&config(server.url())).expect("connect never waits for the server");

    let started = Instant::now();
    let err = redis.ping().await.expect_err("nothing listens yet");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "fails within the command timeout: {:?}", started.elapsed());

    server.restart();
    assert!(eventually(PATIENCE, || async { redis.ping().await.is_ok() }).await, "connects once Redis appears");
}

#[tokio::test]
async fn a_frozen_redis_fails_fast_instead_of_hanging_and_recovers() {
    let (server, redis) = connected().await;

    server.freeze();
    let started = Instant::now();
    let err = redis.ping().await.expect_err("a frozen server does not answer");
    let waited = started.elapsed();
    server.thaw();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(waited < Duration::from_secs(2), "bounded by the 500 ms command timeout, took {waited:?}");

    assert!(eventually(PATIENCE, || async { redis.ping().await.is_ok() }).await, "recovers after the thaw");
}

#[tokio::test]
async fn reconnects_after_a_restart_and_resubscribes() {
    let (server, redis) = connected().await;
    let pubsub = RedisPubSub::new(redis.clone());
    let mut sub = pubsub.subscribe("events").await.expect("subscribe");

    server.restart();

    // Publish until one gets through: the subscription is re-established by itself.
    let deadline = Instant::now() + PATIENCE;
    let mut received = false;
    while !received && Instant::now() < deadline {
        if pubsub.publish("events", b"after restart").await.is_ok() {
            received = matches!(
                tokio::time::timeout(Duration::from_millis(200), sub.recv()).await,
                Ok(Some(m)) if m.payload == b"after restart"
            );
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(received, "the subscriber connection resubscribed after the restart");
}

/// INCR with a TTL for a new key, for the script tests.
const INCREMENT: &str = "local n = redis.call('INCR', KEYS[1]) redis.call('PEXPIRE', KEYS[1], 60000) return n";

#[tokio::test]
async fn scripts_are_reloaded_after_a_script_flush() {
    let (server, redis) = connected().await;
    let script = redis.register_script("test.increment", INCREMENT);
    let key = redis.key("n");
    let run = || redis.eval(&script, vec![key.clone()], vec![]);
    assert_eq!(run().await.expect("first run").as_i64(), Some(1));

    assert!(server.command(&["SCRIPT", "FLUSH"]).starts_with("+OK"));
    assert_eq!(run().await.expect("NOSCRIPT is handled by reloading").as_i64(), Some(2));
}

#[tokio::test]
async fn the_command_buffer_is_bounded_while_disconnected() {
    let server = RedisServer::start();
    server.stop();
    let mut cfg = config(server.url());
    cfg.max_command_buffer = 4;
    cfg.command_timeout = Duration::from_secs(3);
    let redis = Redis::connect(&cfg).expect("client");

    // More commands than the buffer holds: the overflow fails at once instead of queueing.
    let started = Instant::now();
    let pings: Vec<_> = (0..32)
        .map(|_| {
            let r = redis.clone();
            tokio::spawn(async move { (r.ping().await, Instant::now()) })
        })
        .collect();
    let mut fast_failures = 0;
    for ping in pings {
        let (result, at) = ping.await.expect("task");
        if result.is_err() && at.duration_since(started) < Duration::from_secs(1) {
            fast_failures += 1;
        }
    }
    // Each pooled connection buffers 4; only those may wait for the 3 s timeout, the rest fail at once.
    let buffered = 4 * cfg.pool_size;
    assert!(
        fast_failures >= 32 - buffered,
        "backpressure rejects commands beyond the buffers at once ({fast_failures} of 32, {buffered} buffered)"
    );
}

#[tokio::test]
async fn the_last_subscriber_leaving_unsubscribes_from_redis() {
    let redis = crate::testing::redis().await;
    let pubsub = RedisPubSub::new(redis.clone());
    let channel = redis.key("leaving");
    let numsub = || RedisServer::shared().command(&["PUBSUB", "NUMSUB", &channel]);
    let a = pubsub.subscribe("leaving").await.expect("subscribe");
    let b = pubsub.subscribe("leaving").await.expect("subscribe");
    assert!(numsub().ends_with(":1\r\n"), "one Redis subscription for two local subscribers: {:?}", numsub());
    drop(a);
    assert!(numsub().ends_with(":1\r\n"), "still subscribed while one is left");
    drop(b);
    assert!(eventually(PATIENCE, || async { numsub().ends_with(":0\r\n") }).await, "unsubscribed: {:?}", numsub());
}

/// How many times `server` has run `command` (scripts' commands included), from its `INFO`.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let stats = server.command(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:");
    stats
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.split(['=', ',']).nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn scripts_issued_together_in_a_batch_travel_as_one_evalsha() {
    let (server, redis) = connected().await;
    let echo = redis.register_script("test_echo", "return {KEYS[1], ARGV[1]}");
    let nothing = redis.register_script("test_nothing", "if ARGV[1] == 'x' then return false end return 1");
    let evalsha = || calls(&server, "evalsha");
    let together = || {
        redis.batched(async {
            futures::join!(
                redis.eval(&echo, vec![redis.key("{t}a")], vec![crate::Arg::from("one")]),
                redis.eval(&nothing, vec![redis.key("{t}b")], vec![crate::Arg::from("x")]),
                redis.eval(&echo, vec![redis.key("{t}c")], vec![crate::Arg::from("three")]),
            )
        })
    };
    // The first time, the combined script is loaded (NOSCRIPT, SCRIPT LOAD, EVALSHA).
    let (first, _, _) = together().await;
    first.expect("echo");
    let before = evalsha();
    let (a, b, c) = together().await;
    let (a, c) = (a.expect("echo").into_array(), c.expect("echo").into_array());
    assert_eq!(a[0].as_str(), Some(redis.key("{t}a").as_str()), "each part sees its own KEYS");
    assert_eq!(a[1].as_str(), Some("one"), "and its own ARGV");
    assert_eq!(b.expect("nothing"), Reply::Nil, "a part answering nil stays nil");
    assert_eq!(c[0].as_str(), Some(redis.key("{t}c").as_str()), "a later part reads its KEYS past the others'");
    assert_eq!(c[1].as_str(), Some("three"), "and its ARGV");
    assert_eq!(evalsha() - before, 1, "one EVALSHA carried the three scripts");
    // Outside a batch, or alone in one, scripts run as they are.
    let alone = redis.batched(redis.eval(&nothing, vec![redis.key("c")], vec![crate::Arg::from("y")])).await;
    assert_eq!(alone.expect("nothing").as_i64(), Some(1));
}

#[tokio::test]
async fn concurrent_calls_of_a_script_from_different_requests_travel_together() {
    let (server, redis) = connected().await;
    let count = redis.register_script("test_count", "return {redis.call('INCR', KEYS[1]), ARGV[1]}");
    let evalsha = || calls(&server, "evalsha");
    let most = crate::batch::MOST_COALESCED;
    // Warm: the script alone and the combinations of `most` and of 4 calls are loaded
    // (NOSCRIPT, SCRIPT LOAD, EVALSHA).
    let call = |i: usize| redis.eval_coalesced(&count, vec![redis.key("n")], vec![crate::Arg::Int(i as i64)]);
    call(0).await.expect("alone");
    futures::future::join_all((1..=most + 4).map(call)).await;
    let before = evalsha();
    // 2 * most + 4 calls made before anything is sent (this test's runtime has one thread: the
    // sending task starts once the test waits): three batches, most + most + 4.
    let replies = futures::future::join_all((0..2 * most + 4).map(call)).await;
    assert_eq!(evalsha() - before, 3, "the calls went as three EVALSHAs");
    let mut counts = Vec::new();
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = reply.expect("reply").into_array();
        assert_eq!(reply[1].as_i64(), Some(i as i64), "each call gets its own reply");
        counts.push(reply[0].as_i64().expect("a count"));
    }
    counts.sort_unstable();
    let (first, last) = (i64::try_from(most).unwrap() + 6, 3 * i64::try_from(most).unwrap() + 9);
    assert_eq!(counts, (first..=last).collect::<Vec<_>>(), "each ran once");
    // Idle again: a call goes out on its own, at once.
    let before = evalsha();
    call(99).await.expect("alone");
    assert_eq!(evalsha() - before, 1);
}

#[tokio::test]
async fn a_coalesced_call_waits_at_most_the_command_timeout_the_batch_ahead_included() {
    let (server, redis) = connected().await;
    let count = redis.register_script("test_count_frozen", "return redis.call('INCR', KEYS[1])");
    let call = || {
        let redis = redis.clone();
        async move {
            let started = Instant::now();
            let result = redis.eval_coalesced(&count, vec![redis.key("n")], Vec::new()).await;
            (result, started.elapsed())
        }
    };
    call().await.0.expect("loaded while Redis answers");
    server.freeze();
    // The first call's batch hangs on the frozen server; the second queues behind it. Sent
    // only once the first batch gave up, it would wait for two timeouts (about 1 s): its own
    // deadline cuts its batch short at 500 ms after it was made.
    let first = tokio::spawn(call());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = tokio::spawn(call());
    let (first, second) = (first.await.expect("first"), second.await.expect("second"));
    server.thaw();
    for (n, (result, waited)) in [first, second].into_iter().enumerate() {
        assert!(result.as_ref().is_err_and(RedisError::is_unavailable), "call {n}: {result:?}");
        assert!(waited < Duration::from_millis(800), "call {n} waited {waited:?}, beyond the 500 ms timeout");
    }
    assert!(eventually(PATIENCE, || async { call().await.0.is_ok() }).await, "answers again after the thaw");
}

#[tokio::test]
async fn replies_reach_scripts_polled_under_wakers_of_their_own() {
    use futures::StreamExt;
    let (_server, redis) = connected().await;
    let echo = redis.register_script("test_echo_arg", "return ARGV[1]");
    // A FuturesUnordered polls each script with a waker of its own, not the task's: a reply
    // must wake it, or the batch would hang.
    let replies = tokio::time::timeout(
        PATIENCE,
        redis.batched(async {
            let scripts: futures::stream::FuturesUnordered<_> = ["a", "b"]
                .into_iter()
                .map(|v| redis.eval(&echo, vec![redis.key("{w}k")], vec![crate::Arg::from(v)]))
                .collect();
            scripts.collect::<Vec<_>>().await
        }),
    )
    .await
    .expect("the replies arrive");
    let mut values: Vec<String> =
        replies.into_iter().map(|r| r.expect("reply").as_str().unwrap_or("?").to_owned()).collect();
    values.sort();
    assert_eq!(values, ["a", "b"]);
}

#[tokio::test]
async fn combined_parts_get_their_own_slices_and_share_one_clock() {
    let (server, redis) = connected().await;
    // Each part answers its KEYS, its ARGV and the clock it read (twice: one read per run).
    let show = "local t = server_ms(); server_ms() return {KEYS, ARGV, tostring(t)}";
    let show = redis.register_script("test_show", show);
    let (keys, args) = (
        |names: &[&str]| names.iter().map(|k| redis.key(k)).collect::<Vec<_>>(),
        |values: &[&str]| values.iter().map(|v| crate::Arg::from(*v)).collect::<Vec<_>>(),
    );
    let run = || {
        redis.batched(async {
            futures::join!(
                redis.eval(&show, keys(&["{t}a"]), Vec::new()),
                redis.eval(&show, keys(&["{t}b", "{t}c"]), args(&["1", "2", "3"])),
                redis.eval(&show, Vec::new(), args(&["4"])),
            )
        })
    };
    run().await.0.expect("loaded on first use");
    let (times, evalshas) = (calls(&server, "time"), calls(&server, "evalsha"));
    let (a, b, c) = run().await;
    let parts: Vec<Vec<Reply>> = [a, b, c].into_iter().map(|r| r.expect("part").into_array()).collect();
    let strings =
        |r: &Reply| r.clone().into_array().iter().map(|v| v.as_str().unwrap_or("?").to_owned()).collect::<Vec<_>>();
    assert_eq!(strings(&parts[0][0]), [redis.key("{t}a")]);
    assert!(strings(&parts[0][1]).is_empty(), "no ARGV for the first part");
    assert_eq!(strings(&parts[1][0]), [redis.key("{t}b"), redis.key("{t}c")]);
    assert_eq!(strings(&parts[1][1]), ["1", "2", "3"]);
    assert!(strings(&parts[2][0]).is_empty(), "no KEYS for the last part");
    assert_eq!(strings(&parts[2][1]), ["4"]);
    assert!(parts.iter().all(|p| p[2] == parts[0][2]), "one clock for every part: {parts:?}");
    assert_eq!(calls(&server, "evalsha") - evalshas, 1, "one script call");
    assert_eq!(calls(&server, "time") - times, 1, "one TIME for the three parts");
}

#[tokio::test]
async fn a_part_reading_past_its_own_arguments_reads_nil_not_the_next_parts() {
    let (_server, redis) = connected().await;
    let optional = redis.register_script("test_optional_arg", "return ARGV[2] or 'none'");
    let echo = redis.register_script("test_echo_first", "return ARGV[1]");
    let (first, second) = redis
        .batched(async {
            futures::join!(
                redis.eval(&optional, vec![redis.key("{o}a")], vec![crate::Arg::from("one")]),
                redis.eval(&echo, vec![redis.key("{o}b")], vec![crate::Arg::from("two")]),
            )
        })
        .await;
    assert_eq!(first.expect("optional").as_str(), Some("none"), "the next part's argument is not this one's");
    assert_eq!(second.expect("echo").as_str(), Some("two"));
}

#[tokio::test]
async fn parts_replies_keep_their_shape_whatever_the_first_part_answers() {
    let (_server, redis) = connected().await;
    let script = |name: &'static str, lua: &'static str| redis.register_script(name, lua);
    // Every part gets what it answers alone, holes, statuses and nesting included, whatever the
    // part before it answered.
    let firsts = [
        script("test_hole", "return {1, nil, 3}"),
        script("test_status", "return redis.status_reply('FINE')"),
        script("test_empty", "return {}"),
        script("test_nested", "return {'a', {'b', 2}, false}"),
        script("test_number", "return 7"),
    ];
    let pair = script("test_pair", "return {'x', {'y', 3}}");
    let key = |k: &str| vec![redis.key(k)];
    let expected_pair = redis.eval(&pair, key("{s}b"), Vec::new()).await.expect("alone");
    assert!(matches!(&expected_pair, Reply::Array(items) if items.len() == 2), "{expected_pair:?}");
    for first in &firsts {
        let alone = redis.eval(first, key("{s}a"), Vec::new()).await.expect("alone");
        let (a, b) = redis
            .batched(async {
                futures::join!(redis.eval(first, key("{s}a"), Vec::new()), redis.eval(&pair, key("{s}b"), Vec::new()))
            })
            .await;
        assert_eq!(a.expect("first part"), alone, "{first:?} answers in a batch what it answers alone");
        assert_eq!(b.expect("second part"), expected_pair, "after {first:?}");
    }
}

#[tokio::test]
async fn a_script_of_several_values_answers_them_as_an_array_alone_and_combined() {
    let (server, redis) = connected().await;
    let pair = redis.register_generated_values_script(
        "test_values".into(),
        "return ARGV[1], redis.call('GET', KEYS[1])".into(),
        2,
    );
    let empty = redis.register_generated_values_script("test_values_none".into(), "return nil, 2".into(), 2);
    let echo = redis.register_script("test_echo_values", "return ARGV[1]");
    server.command(&["SET", &redis.key("{v}set"), "7"]);
    let arg = |a: &str| vec![crate::Arg::from(a)];
    let pair_of = |first: &str, second: Option<&str>| {
        let bytes = |s: &str| Reply::Bytes(s.as_bytes().to_vec());
        Reply::Array(vec![bytes(first), second.map_or(Reply::Nil, bytes)])
    };
    // Alone: the values as an array, a missing key's nil in its place.
    let alone = redis.eval(&pair, vec![redis.key("{v}set")], arg("a")).await.expect("alone");
    assert_eq!(alone, pair_of("a", Some("7")));
    let missing = redis.eval(&pair, vec![redis.key("{v}missing")], arg("b")).await.expect("alone");
    assert_eq!(missing, pair_of("b", None));
    let holes = redis.eval(&empty, Vec::new(), Vec::new()).await.expect("alone");
    assert_eq!(holes, Reply::Array(vec![Reply::Nil, Reply::Int(2)]), "a nil keeps its place");
    // Combined between single-value parts: each part answers what it answers alone.
    let together = || {
        redis.batched(async {
            futures::join!(
                redis.eval(&echo, Vec::new(), arg("first")),
                redis.eval(&pair, vec![redis.key("{v}set")], arg("c")),
                redis.eval(&empty, Vec::new(), Vec::new()),
                redis.eval(&pair, vec![redis.key("{v}missing")], arg("d")),
                redis.eval(&echo, Vec::new(), arg("last")),
            )
        })
    };
    together().await.0.expect("warm: the combination is loaded");
    let before = calls(&server, "evalsha");
    let (first, c, none, d, last) = together().await;
    assert_eq!(calls(&server, "evalsha") - before, 1, "one EVALSHA carried the five");
    assert_eq!(first.expect("echo").as_str(), Some("first"));
    assert_eq!(c.expect("pair"), pair_of("c", Some("7")));
    assert_eq!(none.expect("holes"), holes);
    assert_eq!(d.expect("pair"), pair_of("d", None));
    assert_eq!(last.expect("echo").as_str(), Some("last"), "the parts after several values read their own");
    // Coalesced across requests: each call gets its own pair.
    let calls = (0..40).map(|i| {
        let (key, value) = if i % 2 == 0 { ("{v}set", Some("7")) } else { ("{v}missing", None) };
        let pair = &pair;
        let redis = &redis;
        async move {
            let reply = redis.eval_coalesced(pair, vec![redis.key(key)], arg(&i.to_string())).await;
            (reply.expect("coalesced"), pair_of(&i.to_string(), value))
        }
    });
    for (reply, expected) in futures::future::join_all(calls).await {
        assert_eq!(reply, expected);
    }
}

#[tokio::test]
async fn parts_run_inline_or_as_functions_and_answer_alike() {
    let (server, redis) = connected().await;
    // Returns only at its end: runs inline, its locals its own.
    let double = redis.register_script("test_inline_double", "local n = ARGV[1] * 2\nreturn tostring(n)");
    // Returns early: runs as a function of its own.
    let early = redis.register_script("test_early", "if ARGV[1] == 'x' then return 'early' end\nreturn 'late'");
    let arg = |a: &str| vec![crate::Arg::from(a)];
    let together = || {
        redis.batched(async {
            futures::join!(
                redis.eval(&double, Vec::new(), arg("2")),
                redis.eval(&early, Vec::new(), arg("x")),
                redis.eval(&double, Vec::new(), arg("5")),
                redis.eval(&early, Vec::new(), arg("y")),
            )
        })
    };
    together().await.0.expect("warm: the combination is loaded");
    let before = calls(&server, "evalsha");
    let (a, b, c, d) = together().await;
    assert_eq!(calls(&server, "evalsha") - before, 1, "one EVALSHA carried the four");
    let text = |r: Result<Reply, RedisError>| r.expect("part").as_str().map(str::to_owned);
    assert_eq!((text(a), text(b)), (Some("4".into()), Some("early".into())));
    assert_eq!((text(c), text(d)), (Some("10".into()), Some("late".into())));
    // Parts of many locals and values, combined as many as a call takes: past Lua's 200 locals
    // for one function, the later parts run as functions of their own (else the script would
    // not load, and every call would fail).
    let names: Vec<String> = (1..=100).map(|i| format!("l{i}")).collect();
    let lua = format!(
        "local {} = {}\nreturn ARGV[1], l1, l100, l50",
        names.join(", "),
        (1..=100).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    );
    let wide = redis.register_generated_values_script("test_wide".into(), lua, 4);
    let calls = (0..40).map(|i| {
        let (wide, redis) = (&wide, &redis);
        async move { (i, redis.eval_coalesced(wide, Vec::new(), arg(&i.to_string())).await) }
    });
    for (i, reply) in futures::future::join_all(calls).await {
        let values = reply.expect("loaded and run").into_array();
        assert_eq!(values.first().and_then(Reply::as_str), Some(i.to_string().as_str()), "{values:?}");
        assert_eq!(values[1..].iter().map(Reply::as_i64).collect::<Vec<_>>(), [Some(1), Some(100), Some(50)]);
    }
}
