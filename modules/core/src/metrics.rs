//! The Prometheus registry every module registers its metrics in, served at `/metrics`.
//!
//! One [`Metrics`] per application instance (not a process global), so two app instances in
//! one test process keep separate counts. Metric handles are cheap clones; the registry's mutex
//! is taken only to register (at build time) and to encode (a scrape).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, text::encode},
    metrics::{
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Metric, Registry},
};

/// A value that goes up and down (open connections, stored bytes).
pub use prometheus_client::metrics::gauge::Gauge;

/// The metrics registry of one application instance.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a metric under `name` (without the `_total` suffix for counters).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        let mut registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        registry.register(name, help, metric);
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn encode(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// Labels of one HTTP request: the route *pattern* (never the raw path, which would explode the
/// number of series), the method and the status. Building them allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `GET`, `POST`, ... (`OTHER` for extension methods).
    pub method: &'static str,
    /// The matched route pattern (`/api/v1/notes/:id`), or `unmatched`.
    pub route: RouteLabel,
    /// The response status.
    pub status: u16,
}

/// A route pattern as a label value, shared with the router (no copy per request).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RouteLabel(pub Arc<str>);

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

/// The label of a standard method, without allocating.
pub fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Request latencies (and, through the histogram's `_count`, request counts), recorded by the
/// HTTP stack for every request.
#[derive(Clone)]
pub struct HttpMetrics {
    duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    /// Tells this instance's histograms apart in the threads' [`RECENT`] handles.
    id: u64,
}

/// A histogram a thread recorded into lately, with its labels. Found by the route's pointer
/// (the `Arc` is held, so its address cannot be reused for another route while it is here),
/// without hashing the labels (SipHash) or read-locking the family's map, which every core
/// touches: together about 700 instructions per request.
struct Recent {
    id: u64,
    route: Arc<str>,
    method: &'static str,
    status: u16,
    histogram: Histogram,
}

/// The most handles a thread keeps (a few per route the thread serves; the oldest goes first).
const MOST_RECENT: usize = 32;

thread_local! {
    static RECENT: std::cell::RefCell<Vec<Recent>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Each [`HttpMetrics`] instance's id.
static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl HttpMetrics {
    /// Creates the HTTP metrics and registers them in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        fn histogram() -> Histogram {
            // 1 ms .. ~16 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        }
        let id = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let this = Self { duration: Family::new_with_constructor(histogram as fn() -> Histogram), id };
        metrics.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route pattern and status; `_count` counts requests",
            this.duration.clone(),
        );
        this
    }

    /// Records one finished request.
    pub fn observe(&self, labels: &HttpLabels, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let recorded = RECENT.with_borrow(|recent| {
            recent
                .iter()
                .find(|r| {
                    r.id == self.id
                        && Arc::ptr_eq(&r.route, &labels.route.0)
                        && r.status == labels.status
                        && r.method == labels.method
                })
                .map(|r| r.histogram.observe(seconds))
                .is_some()
        });
        if recorded {
            return;
        }
        let histogram = self.duration.get_or_create(labels).clone();
        histogram.observe(seconds);
        let route = labels.route.0.clone();
        let (method, status) = (labels.method, labels.status);
        RECENT.with_borrow_mut(|recent| {
            if recent.len() >= MOST_RECENT {
                recent.remove(0);
            }
            recent.push(Recent { id: self.id, route, method, status, histogram });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_recorded_requests() {
        let metrics = Metrics::new();
        let http = HttpMetrics::new(&metrics);
        let labels = HttpLabels { method: "GET", route: RouteLabel("/health/live".into()), status: 200 };
        http.observe(&labels, Duration::from_millis(3));
        http.observe(&labels, Duration::from_millis(3));
        let text = metrics.encode();
        let count = r#"http_request_duration_seconds_count{method="GET",route="/health/live",status="200"} 2"#;
        assert!(text.contains(count), "{text}");
        let bucket =
            r#"http_request_duration_seconds_bucket{le="0.004",method="GET",route="/health/live",status="200"} 2"#;
        assert!(text.contains(bucket), "{text}");
    }

    /// Requests whose labels are equal count in one series, whichever `Arc` holds the route,
    /// and each instance counts its own, as its handles are kept by the thread.
    #[test]
    fn equal_labels_share_a_series_and_instances_keep_their_own() {
        let (one, two) = (Metrics::new(), Metrics::new());
        let (http_one, http_two) = (HttpMetrics::new(&one), HttpMetrics::new(&two));
        let labels = |route: &str, status| HttpLabels { method: "GET", route: RouteLabel(route.into()), status };
        let (a, b) = (labels("/a", 200), labels("/a", 200));
        for _ in 0..3 {
            http_one.observe(&a, Duration::from_millis(3));
        }
        http_one.observe(&b, Duration::from_millis(3));
        http_one.observe(&labels("/a", 404), Duration::from_millis(3));
        http_two.observe(&a, Duration::from_millis(3));
        // More label sets than a thread keeps handles for: the oldest are looked up again.
        for n in 0..MOST_RECENT + 5 {
            http_one.observe(&labels(&format!("/n{n}"), 200), Duration::from_millis(3));
        }
        http_one.observe(&a, Duration::from_millis(3));
        let count = |route: &str, status: u16, n: u32| {
            format!(r#"http_request_duration_seconds_count{{method="GET",route="{route}",status="{status}"}} {n}"#)
        };
        let text = one.encode();
        assert!(text.contains(&count("/a", 200, 5)), "{text}");
        assert!(text.contains(&count("/a", 404, 1)), "{text}");
        assert!(text.contains(&count("/n0", 200, 1)), "{text}");
        let text = two.encode();
        assert!(text.contains(&count("/a", 200, 1)), "{text}");
        assert!(!text.contains("/a\",status=\"404"), "{text}");
    }
}
