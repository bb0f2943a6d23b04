//! The contract suite on both adapters (Redis on a real server and on a real cluster), plus the
//! Redis key layout.

use std::sync::Arc;

use app_core::testing::RedisServer;
use app_redis::testing::{redis as client, redis_cluster as cluster_client};
use uuid::Uuid;

use super::{contract::Factory, *};

async fn memory() -> Factory {
    Arc::new(|policy| Arc::new(MemorySessionStore::new(policy)) as Arc<dyn SessionStore>)
}

async fn redis() -> Factory {
    let redis = client().await;
    Arc::new(move |policy| Arc::new(RedisSessionStore::new(redis.clone(), policy)) as Arc<dyn SessionStore>)
}

async fn redis_cluster() -> Factory {
    let redis = cluster_client().await;
    Arc::new(move |policy| Arc::new(RedisSessionStore::new(redis.clone(), policy)) as Arc<dyn SessionStore>)
}

app_core::contract_tests! {
    suite = contract,
    adapters = { memory => memory, redis => redis, redis_cluster => redis_cluster },
    tests = [
        a_created_session_can_be_touched,
        a_refresh_token_rotates_once_and_reuse_revokes_the_session,
        an_unknown_refresh_token_changes_nothing,
        a_repeated_refresh_within_the_grace_gets_the_same_successor_and_later_counts_as_reuse,
        racing_refreshes_with_one_token_all_get_the_one_successor,
        concurrent_refreshes_with_one_token_never_fork_the_session,
        revoking_ends_one_session_and_only_the_owners,
        revoking_all_ends_every_session_of_the_user_only,
        listing_shows_live_sessions_oldest_first,
        the_session_count_per_user_is_capped,
        an_idle_session_ends_and_use_keeps_it_alive,
        a_session_ends_at_its_absolute_deadline_however_active,
    ],
}

#[tokio::test]
async fn every_key_of_a_user_shares_one_hash_tag_and_carries_a_ttl() {
    let server = RedisServer::shared();
    let redis = client().await;
    let store = RedisSessionStore::new(redis.clone(), SessionPolicy::default());
    let user = Uuid::now_v7();
    let s = store
        .create(NewSession {
            user_id: user,
            session_id: crate::tokens::new_session_id(),
            blob: vec![1],
            refresh_hash: "h".into(),
        })
        .await
        .expect("create");
    let rotated = store.rotate(user, &s.session_id, "h", "h2").await.expect("rotate");
    assert!(matches!(rotated, Rotation::Rotated(_)));
    let base = format!("{}sess:{{u:{user}}}:", redis.prefix());
    assert_eq!(store.user_base(user), base);
    for key in [format!("{base}{}", s.session_id), format!("{base}{}:old", s.session_id), format!("{base}index")] {
        let ttl = server.pttl(&key);
        assert!(ttl > 0, "{key} has a TTL (got {ttl})");
    }
}
