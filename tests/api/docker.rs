//! The shipped `docker/redis.conf` runs on a real redis-server and protects shared state.

use app_core::testing::RedisServer;

#[test]
fn the_shipped_redis_conf_never_evicts_shared_state_and_keeps_an_aof() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/redis.conf");
    let server = RedisServer::start_with_config(&conf);
    let get = |name: &str| server.command(&["CONFIG", "GET", name]);
    assert!(get("maxmemory-policy").contains("noeviction"), "{}", get("maxmemory-policy"));
    assert!(get("appendonly").contains("yes"));
    assert!(get("appendfsync").contains("everysec"));
    assert!(get("maxmemory").contains("268435456"), "256 MB: {}", get("maxmemory"));
}

#[test]
fn the_compose_file_wires_the_app_to_healthy_dependencies() {
    let compose = include_str!("../../docker/docker-compose.yml");
    for needle in [
        "condition: service_healthy",
        "redis-cli\", \"ping\"",
        "pg_isready",
        "REDIS_URL: redis://redis:6379",
        "DATABASE_URL: postgres://",
        "APP_PROFILE: production",
        "./redis.conf:/usr/local/etc/redis/redis.conf:ro",
        "command: [\"worker\"]",
        "APP_JOBS__WORKERS: \"false\"",
    ] {
        assert!(compose.contains(needle), "docker-compose.yml lacks {needle:?}");
    }
    let dockerfile = include_str!("../../docker/Dockerfile");
    assert!(
        dockerfile.contains("USER app") && dockerfile.contains("FROM debian:bookworm-slim"),
        "non-root, slim runtime"
    );
}
