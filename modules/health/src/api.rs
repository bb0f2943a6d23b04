//! The health controller.

use std::{collections::BTreeMap, sync::Arc};

use poem_openapi::{
    ApiResponse, Object, OpenApi, Tags,
    payload::{Json, PlainText},
};
use shaku::HasComponent;

use app_core::{
    Role,
    guard::{Verifier, bearer_token},
    readiness::{Check, CheckStatus},
};
use poem::{Request, http::header};

use crate::service::{HealthService, Readiness};

#[derive(Tags)]
enum HealthTags {
    /// Liveness, readiness and metrics for load balancers, orchestrators and Prometheus.
    Health,
}

/// The liveness answer.
#[derive(Debug, Object)]
struct Live {
    /// Always `ok`: the process serves requests.
    status: CheckStatus,
}

#[derive(ApiResponse)]
enum LiveResponse {
    /// The process is serving.
    #[oai(status = 200)]
    Ok(Json<Live>),
}

/// The readiness report.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(rename = "Readiness", skip_serializing_if_is_none)]
struct ReadinessDto {
    /// `ok` when every check passed, else `down`.
    status: CheckStatus,
    /// Each dependency's check, by name (`redis`, `database`, and any a module adds).
    checks: BTreeMap<String, Check>,
    /// The names of the failing checks, when any fail.
    failing: Option<Vec<String>>,
}

impl From<Readiness> for ReadinessDto {
    fn from(r: Readiness) -> Self {
        Self { status: r.status, checks: r.checks, failing: (!r.failing.is_empty()).then_some(r.failing) }
    }
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Every required dependency answered.
    #[oai(status = 200)]
    Ready(Json<ReadinessDto>, #[oai(header = "Cache-Control")] String),
    /// A required dependency is down; `failing` names it. The body is the same report
    /// (deliberately not problem+json: it is a health report, read by probes and operators).
    #[oai(status = 503)]
    NotReady(Json<ReadinessDto>, #[oai(header = "Cache-Control")] String),
}

const NO_STORE: &str = "no-store";

/// Whether the request carries an admin's valid bearer token (details are for admins only, as
/// Spring Boot's `show-details: when-authorized`; anyone else, a bad token included, gets the
/// statuses).
async fn is_admin(req: &Request) -> bool {
    let (Some(Verifier(verifier)), Some(token)) =
        (app_core::guard::verifier(req), req.headers().get(header::AUTHORIZATION).and_then(bearer_token))
    else {
        return false;
    };
    verifier.verify(token).await.is_ok_and(|principal| principal.role == Role::Admin)
}

/// `/health/*` and `/metrics`.
pub struct HealthApi {
    service: Arc<dyn HealthService>,
}

impl HealthApi {
    /// The controller, with its service resolved from the module.
    pub fn new<M: HasComponent<dyn HealthService> + ?Sized>(module: &M) -> Self {
        Self { service: module.resolve() }
    }
}

#[OpenApi(tag = "HealthTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// 200 while the process serves requests. Consults no dependency, so an outage of Redis or
    /// the database never gets healthy instances restarted.
    #[oai(path = "/health/live", method = "get", operation_id = "healthLive")]
    async fn live(&self) -> LiveResponse {
        LiveResponse::Ok(Json(Live { status: CheckStatus::Ok }))
    }

    /// Readiness
    ///
    /// 200 when shared state (Redis, or the memory backend) and the database answer; 503 naming
    /// the failing check otherwise. Each check is bounded by `health.check_timeout`. Anyone sees
    /// each check's status; with an admin's bearer token, the checks carry their details too
    /// (backend, latency, version, role, memory, clients, uptime, eviction policy, why one is down).
    #[oai(path = "/health/ready", method = "get", operation_id = "healthReady")]
    async fn ready(&self, req: &Request) -> ReadyResponse {
        let mut report = self.service.readiness().await;
        if !is_admin(req).await {
            for check in report.checks.values_mut() {
                *check = Check { status: check.status, ..Check::down("", "") };
                check.backend = None;
            }
        }
        match report.status {
            CheckStatus::Ok => ReadyResponse::Ready(Json(report.into()), NO_STORE.to_owned()),
            CheckStatus::Down => ReadyResponse::NotReady(Json(report.into()), NO_STORE.to_owned()),
        }
    }

    /// Prometheus metrics
    ///
    /// The text exposition format: HTTP request counts and latencies by route, and every
    /// module's own metrics. Expose it to your scraper only (block it at the load balancer).
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.service.metrics())
    }
}
