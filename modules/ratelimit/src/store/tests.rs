//! The contract on both adapters (Redis on a real server and a real cluster), and the TTLs.

use std::sync::Arc;

use app_core::testing::RedisServer;
use app_redis::testing::{redis as client, redis_cluster as cluster_client};

use super::*;

async fn memory() -> Arc<dyn RateLimitStore> {
    Arc::new(MemoryRateLimitStore::new())
}

async fn redis() -> Arc<dyn RateLimitStore> {
    Arc::new(RedisRateLimitStore::new(client().await))
}

async fn redis_cluster() -> Arc<dyn RateLimitStore> {
    Arc::new(RedisRateLimitStore::new(cluster_client().await))
}

app_core::contract_tests! {
    suite = contract,
    adapters = { memory => memory, redis => redis, redis_cluster => redis_cluster },
    tests = [
        a_burst_of_limit_passes_then_requests_are_refused,
        the_allowance_recovers_as_the_window_moves,
        a_block_outlasts_the_window_and_ends_by_itself,
        peeking_counts_nothing_and_reset_forgets,
        exactly_the_limit_passes_under_concurrency,
        subjects_are_independent,
        a_fractional_interval_admits_exactly_the_limit,
        the_generic_and_the_compiled_script_count_alike,
        a_refund_takes_back_one_admitted_request_and_nothing_else,
    ],
}

#[tokio::test]
async fn every_rate_limit_key_carries_a_ttl() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisRateLimitStore::new(redis.clone());
    let limit = store.compile(Limit { limit: 1, window_ms: 60_000, block_ms: 30_000 });
    // The key carries the policy's span (60 s, in µs).
    let key = format!("{}rl:ttl:{{ip:192.0.2.1}}:60000000us", redis.prefix());
    store.hit("rl:ttl:{ip:192.0.2.1}", &limit).await.expect("hit");
    let state = server.pttl(&key);
    assert!(state > 0 && state <= 120_000, "the state carries a TTL of at most two windows ({state})");
    store.refund("rl:ttl:{ip:192.0.2.1}", &limit.limit).await.expect("refund");
    let refunded = server.pttl(&key);
    assert!(refunded > 0 && refunded <= state, "a refund keeps the TTL ({refunded})");
    store.refund("rl:ttl:{ip:192.0.2.9}", &limit.limit).await.expect("refund");
    let untouched = format!("{}rl:ttl:{{ip:192.0.2.9}}:60000000us", redis.prefix());
    assert_eq!(server.pttl(&untouched), -2, "a refund of nothing makes no key");
    store.hit("rl:ttl:{ip:192.0.2.1}", &limit).await.expect("hit");
    store.hit("rl:ttl:{ip:192.0.2.1}", &limit).await.expect("hit");
    let block = server.pttl(&key);
    assert!(block > 0 && block <= 30_000, "the block carries its own TTL ({block})");
    store.hit("rl:ttl:{ip:192.0.2.1}", &limit).await.expect("hit");
    let still = server.pttl(&key);
    assert!(still > 0 && still <= block, "a blocked request keeps the block's TTL ({still}, {block})");
}

/// The state's value, its key's TTL and the server's clock (ms), read together.
fn state_and_expiry(server: &RedisServer, key: &str) -> (i64, i64, i64) {
    let lua = "local t = redis.call('TIME') \
               return {tonumber(redis.call('GET', KEYS[1]) or 0), redis.call('PTTL', KEYS[1]), t[1] * 1000 + math.floor(t[2] / 1000)}";
    let reply = server.command(&["EVAL", lua, "1", key]);
    let ints: Vec<i64> =
        reply.lines().filter_map(|l| l.strip_prefix(':')).map(|n| n.parse().expect("an integer")).collect();
    assert_eq!(ints.len(), 3, "{reply:?}");
    (ints[0], ints[1], ints[2])
}

#[tokio::test]
async fn the_state_outlives_its_debt_as_its_ttl_moves_from_span_to_span() {
    // 4 per 200 ms: an interval of 50 ms. Requests every 10 ms keep the subject in debt, so
    // each is counted by the addition alone, and the arrival time passes into the next span
    // of the clock every 4 admitted requests; requests every 60 ms find it out of debt, so each
    // moves its arrival time to now plus the interval, into a later span every few requests.
    // Each time the TTL must move with it.
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisRateLimitStore::new(redis.clone());
    let limit = store.compile(Limit { limit: 4, window_ms: 200, block_ms: 0 });
    for (gap_ms, requests) in [(10, 150), (60, 40)] {
        let name = format!("rl:test:{{{}}}", app_core::testing::unique_prefix());
        let key = format!("{}{name}:200000us", redis.prefix());
        let started = std::time::Instant::now();
        let (mut admitted, mut spans) = (0, std::collections::HashSet::new());
        for _ in 0..requests {
            if store.hit(&name, &limit).await.expect("hit").allowed {
                admitted += 1;
                let (tat_us, ttl, now_ms) = state_and_expiry(server, &key);
                assert!(ttl > 0, "an admitted request leaves state with a TTL ({ttl})");
                assert!(
                    now_ms + ttl + 1 >= tat_us / 1000,
                    "the state lives until its arrival time: {tat_us} us, ttl {ttl}, every {gap_ms} ms"
                );
                assert!(ttl <= 400, "and at most two spans ({ttl})");
                spans.insert(tat_us / 200_000);
            }
            tokio::time::sleep(std::time::Duration::from_millis(gap_ms)).await;
        }
        assert!(spans.len() >= 5, "the arrival time crossed into {} spans", spans.len());
        if gap_ms > 50 {
            assert_eq!(admitted, requests, "out of debt, every request passes");
        } else {
            // Exact all along: the burst, then one per 50 ms.
            let most = 4 + started.elapsed().as_millis() / 50 + 1;
            assert!(admitted as u128 <= most && admitted >= 20, "{admitted} admitted, at most {most}");
        }
    }
}

#[tokio::test]
async fn refused_and_blocked_requests_leave_the_state_as_it_was() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisRateLimitStore::new(redis.clone());
    for (block_ms, blocked) in [(0, false), (60_000, true)] {
        let limit = store.compile(Limit { limit: 2, window_ms: 60_000, block_ms });
        let name = format!("rl:test:{{{}}}", app_core::testing::unique_prefix());
        let key = format!("{}{name}:60000000us", redis.prefix());
        store.hit(&name, &limit).await.expect("hit");
        store.hit(&name, &limit).await.expect("hit");
        let first = store.hit(&name, &limit).await.expect("hit");
        assert!(!first.allowed && first.blocked == blocked, "{first:?}");
        let (state, _, _) = state_and_expiry(server, &key);
        assert_eq!(state < 0, blocked, "a block is kept as minus its end ({state})");
        for _ in 0..5 {
            let again = store.hit(&name, &limit).await.expect("hit");
            assert!(!again.allowed && again.blocked == blocked, "{again:?}");
        }
        assert_eq!(state_and_expiry(server, &key).0, state, "refusals counted nothing");
    }
}
