//! The admin route: `GET /api/v1/admin/cache`.

use std::sync::Arc;

use app_core::{
    AdminAuth, Problems,
    problem::markers::{Forbidden, Unauthorized, Unavailable},
};
use poem_openapi::{Object, OpenApi, Tags, payload::Json};
use shaku::HasComponent;

use crate::CacheManager;

#[derive(Tags)]
enum CacheTags {
    /// Administration (role `admin`).
    Admin,
}

/// One cache namespace's counters on the instance that answered (since it started).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct CacheNamespaceStats {
    /// The namespace (each module that caches names its own).
    namespace: String,
    /// Reads answered from the cache.
    hits: u64,
    /// Reads that went to the database.
    misses: u64,
    /// `hits / (hits + misses)`, 0 before the first read.
    hit_rate: f64,
    /// Database loads made to fill misses; fewer than `misses` when concurrent misses were
    /// coalesced into one load.
    loads: u64,
}

/// `/api/v1/admin/cache`.
pub struct CacheApi {
    cache: Arc<CacheManager>,
}

impl CacheApi {
    /// The controller, with the manager resolved from the module.
    pub fn new<M: HasComponent<CacheManager> + ?Sized>(module: &M) -> Self {
        Self { cache: module.resolve() }
    }
}

#[OpenApi(prefix_path = "/api/v1/admin/cache", tag = "CacheTags::Admin")]
impl CacheApi {
    /// Cache hit and miss counts per namespace (admin only)
    ///
    /// Counts are per app instance (the one answering); Prometheus has every instance's as
    /// `cache_requests_total{namespace, result}` and `cache_loads_total{namespace}` at `/metrics`.
    #[oai(path = "/", method = "get", operation_id = "getCacheStats")]
    async fn stats(
        &self,
        _auth: AdminAuth,
    ) -> Result<Json<Vec<CacheNamespaceStats>>, Problems<(Unauthorized, Forbidden, Unavailable)>> {
        let stats = self.cache.stats().into_iter().map(|s| CacheNamespaceStats {
            namespace: s.namespace.to_owned(),
            hits: s.hits,
            misses: s.misses,
            hit_rate: s.hit_rate(),
            loads: s.loads,
        });
        Ok(Json(stats.collect()))
    }
}
