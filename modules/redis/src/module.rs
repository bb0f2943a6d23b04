//! The Redis module: connects shared state (or picks the memory backend) and provides it to the
//! modules that import this one.

use app_core::{Context, Lifecycle, Module, ModuleError, config::Section};
use async_trait::async_trait;

use crate::{Redis, RedisConfig, SharedState, probe::RedisCheck};

/// Shared state for every module: Redis when `redis.url` (or `redis.host`) is set, else the
/// in-process memory backend. Provides [`SharedState`]; its readiness check is `redis`; the
/// client closes last (after every module that uses it has stopped).
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisModule;

#[async_trait]
impl Module for RedisModule {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<RedisConfig>())
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let config = ctx.config::<RedisConfig>();
        let state = if config.is_configured() {
            // Connecting happens in the background and never fails start-up: the app serves 503s
            // and reports `redis` down until Redis answers.
            SharedState::Redis(Redis::connect(config).map_err(ModuleError::new)?)
        } else {
            tracing::warn!(
                "shared state is in memory: sessions, rate limits, locks and jobs are per-instance and lost on \
                 restart; set REDIS_URL to share them across instances"
            );
            SharedState::Memory
        };
        ctx.readiness(RedisCheck(state.clone()));
        ctx.lifecycle(Close(state.clone()));
        ctx.provide(state);
        Ok(())
    }
}

/// Closes the client once everything that uses it has stopped.
struct Close(SharedState);

#[async_trait]
impl Lifecycle for Close {
    async fn stop(&self) {
        if let Some(redis) = self.0.redis() {
            redis.close().await;
        }
    }
}
