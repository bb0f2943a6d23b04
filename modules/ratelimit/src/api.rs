//! The admin routes: `/api/v1/admin/rate-limits/{policy}/{key}`.

use std::sync::Arc;

use app_core::{
    AdminAuth, ApiError, FieldError, Problems, Timestamp,
    problem::markers::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable},
};
use poem_openapi::{
    ApiResponse, Object, OpenApi, Tags,
    param::{Path, Query},
    payload::Json,
};
use shaku::HasComponent;

use crate::RateLimits;

#[derive(Tags)]
enum RateLimitTags {
    /// Administration (role `admin`).
    Admin,
}

/// A subject's state under one policy.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct RateLimitStatus {
    /// Requests allowed per window.
    limit: u32,
    /// Requests left right now.
    remaining: u32,
    /// When the allowance is whole again.
    reset_at: Timestamp,
    /// Whether the subject is serving a block.
    blocked: bool,
}

#[derive(ApiResponse)]
enum Reset {
    /// The subject's state and block are cleared.
    #[oai(status = 204)]
    NoContent,
}

/// `/api/v1/admin/rate-limits/*`.
pub struct RateLimitApi {
    limits: Arc<dyn RateLimits>,
}

impl RateLimitApi {
    /// The controller, with the limiter resolved from the module.
    pub fn new<M: HasComponent<dyn RateLimits> + ?Sized>(module: &M) -> Self {
        Self { limits: module.resolve() }
    }

    fn key(&self, policy: &str, key: &str, route: Option<&str>) -> Result<String, ApiError> {
        let limiter = self.limits.limiter();
        if limiter.policy(policy).is_none() {
            return Err(ApiError::not_found(format!("No rate-limit policy named '{policy}'")));
        }
        limiter.admin_key(policy, key, route.unwrap_or_default()).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "key",
                "must be the policy's subject: `user:<uuid>`, `ip:<address>`, `email:<address>` or `ip:<address>,email:<address>`",
            )])
        })
    }
}

#[OpenApi(prefix_path = "/api/v1/admin/rate-limits", tag = "RateLimitTags::Admin")]
impl RateLimitApi {
    /// A subject's rate-limit state (admin only)
    ///
    /// `key` names the subject the policy counts: `user:<uuid>`, `ip:<address>`,
    /// `email:<address>` (the account login attempts name), or `ip:<address>,email:<address>`.
    /// For policies scoped per route, pass the operation as `route` (`POST /api/v1/notes`).
    #[oai(path = "/:policy/:key", method = "get", operation_id = "getRateLimit")]
    async fn status(
        &self,
        _auth: AdminAuth,
        policy: Path<String>,
        key: Path<String>,
        route: Query<Option<String>>,
    ) -> Result<Json<RateLimitStatus>, Problems<(BadRequest, Unauthorized, Forbidden, NotFound, Unavailable)>> {
        let store_key = self.key(&policy.0, &key.0, route.0.as_deref())?;
        let limiter = self.limits.limiter();
        let (_, limit) = limiter.policy(&policy.0).ok_or_else(|| ApiError::not_found("No such policy"))?;
        let outcome = limiter.store().peek(&store_key, limit).await.map_err(ApiError::from)?;
        let now = now_ms();
        Ok(Json(RateLimitStatus {
            limit: limit.limit,
            remaining: outcome.remaining,
            reset_at: Timestamp::from_millis(now + outcome.reset_ms as i64),
            blocked: outcome.blocked,
        }))
    }

    /// Reset a subject's rate-limit state (admin only)
    ///
    /// Clears the count and any block, e.g. for a user locked out by failed logins.
    #[oai(path = "/:policy/:key", method = "delete", operation_id = "resetRateLimit")]
    async fn reset(
        &self,
        _auth: AdminAuth,
        policy: Path<String>,
        key: Path<String>,
        route: Query<Option<String>>,
    ) -> Result<Reset, Problems<(BadRequest, Unauthorized, Forbidden, NotFound, Unavailable)>> {
        let store_key = self.key(&policy.0, &key.0, route.0.as_deref())?;
        let limiter = self.limits.limiter();
        let (_, limit) = limiter.policy(&policy.0).ok_or_else(|| ApiError::not_found("No such policy"))?;
        limiter.store().reset(&store_key, limit).await.map_err(ApiError::from)?;
        Ok(Reset::NoContent)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
