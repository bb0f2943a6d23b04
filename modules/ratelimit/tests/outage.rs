//! While Redis is unavailable a fail-open policy lets requests through and a fail-closed one
//! refuses them; the outage is logged once (not per request), counted in the metrics, and
//! limiting resumes by itself.
//!
//! A test binary of its own: it installs a global log subscriber.

use std::{
    io::Write,
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex},
    time::Duration,
};

use app_core::{
    metrics::Metrics,
    testing::{RedisServer, eventually, unique_prefix},
    throttle::{Subject, Throttler},
};
use app_ratelimit::{FailureMode, RateLimitConfig, RateLimiter, store::RedisRateLimitStore};
use app_redis::{Redis, RedisConfig};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap()).matches(needle).count()
    }
}

const DOWN: &str = "rate limiting cannot reach its store";
const BACK: &str = "rate limiting reaches its store again";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_logged_once_counted_and_recovered_from() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt().with_writer(move || writer.clone()).with_max_level(tracing::Level::INFO).init();

    let server = RedisServer::start();
    let redis = Redis::connect(&RedisConfig {
        url: Some(server.url()),
        key_prefix: unique_prefix(),
        command_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        reconnect_max_delay: Duration::from_millis(200),
        ..RedisConfig::default()
    })
    .expect("client");
    assert!(redis.wait_connected(Duration::from_secs(5)).await);
    let mut config = RateLimitConfig::default();
    config.policies.get_mut("auth").unwrap().on_unavailable = FailureMode::Closed;
    let metrics = Metrics::new();
    let limiter = RateLimiter::new(&config, Arc::new(RedisRateLimitStore::new(redis)), &metrics);
    let subject = Subject { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), user: None, account: None };

    assert!(limiter.check("api", "/", &subject).await.expect("up").is_some());
    for _ in 0..2 {
        server.stop();
        for _ in 0..5 {
            assert_eq!(limiter.check("api", "/", &subject).await.expect("fails open"), None);
            let closed = limiter.check("auth", "/", &subject).await.expect_err("fails closed");
            assert_eq!(closed.status(), poem::http::StatusCode::SERVICE_UNAVAILABLE);
        }
        server.restart();
        let recovered = eventually(Duration::from_secs(10), || async {
            limiter.check("api", "/", &subject).await.is_ok_and(|s| s.is_some())
        })
        .await;
        assert!(recovered, "limiting resumes without a restart");
    }
    assert_eq!(captured.count(DOWN), 2, "one warning per outage, not per request");
    assert_eq!(captured.count(BACK), 2, "and one line when it is back");
    let exposition = metrics.encode();
    let unavailable = exposition
        .lines()
        .find(|l| l.contains("policy=\"api\"") && l.contains("store_unavailable"))
        .expect("the outage is counted");
    let count: f64 = unavailable.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(count >= 10.0, "every refused check while down is counted: {unavailable}");
}
