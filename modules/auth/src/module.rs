//! The auth module: the session store binding, the service, the session verifier behind the
//! bearer guard, and the `/auth` routes.

use std::sync::Arc;

use app_core::{
    Context, Controller, ErrorCode, Lifecycle, Mode, Module, ModuleError, config::Section, guard::Verifier,
};
use app_redis::{RedisModule, SharedState};
use app_users::{UserRepository, UsersContainer, UsersModule};
use async_trait::async_trait;
use shaku::{HasComponent, module};

use crate::{
    AuthApi, AuthConfig, AuthService, AuthServiceComponent, AuthServiceParams, AuthVerifier,
    store::{MemorySessionStore, RedisSessionStore, SessionPolicy, SessionStore},
};

app_redis::port_binding! {
    /// Binds [`SessionStore`] to the adapter of the backend chosen at start-up.
    SessionStoreBinding: dyn SessionStore, params(policy: SessionPolicy) {
        memory => MemorySessionStore::new(policy),
        redis(r) => RedisSessionStore::new(r, policy),
    }
}

module! {
    pub AuthContainer {
        components = [SessionStoreBinding, AuthServiceComponent],
        providers = [],

        use UsersContainer {
            components = [dyn UserRepository],
            providers = []
        }
    }
}

/// Register and login, access tokens bound to sessions in shared state, refresh rotation, and
/// the session verifier behind the bearer guard (which it provides as [`Verifier`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthModule;

#[async_trait]
impl Module for AuthModule {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(RedisModule), Box::new(UsersModule)]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<AuthConfig>())
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        crate::error::CODES
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let config = ctx.config::<AuthConfig>().clone();
        let state = (*ctx.get::<SharedState>()?).clone();
        // On Redis, checked sessions are kept in process while the user's version read with each
        // request's rate-limit count is unchanged.
        let copies = state.redis().inspect(|redis| redis.read_user_versions(&ctx.versions())).is_some();
        let store = app_redis::Bound { state, params: config.session_policy() };
        let secure_cookie = config.cookie_secure(ctx.profile());
        let container = ctx.container(
            AuthContainer::builder(ctx.get()?)
                .with_component_parameters::<SessionStoreBinding>(store)
                .with_component_parameters::<AuthServiceComponent>(AuthServiceParams { config, copies }),
        );
        let service: Arc<dyn AuthService> = container.resolve();
        ctx.provide(Verifier(Arc::new(AuthVerifier(service))));
        ctx.controller(Controller::new(AuthApi::new(&*container, secure_cookie)).throttled(crate::api::RULES));
        ctx.lifecycle(WarmUp);
        ctx.patch_spec(|spec| {
            if let Some(description) = spec.pointer_mut("/components/securitySchemes/bearer/description") {
                *description = serde_json::Value::from(
                    "An access token from `POST /api/v1/auth/login` or `/auth/refresh`, sent as `Authorization: Bearer <token>`.",
                );
            }
        });
        Ok(())
    }
}

/// Makes the dummy password hash (for logins with an unknown email) off the hot path.
struct WarmUp;

#[async_trait]
impl Lifecycle for WarmUp {
    async fn start(&self, mode: Mode) -> Result<(), ModuleError> {
        if mode == Mode::Serve {
            tokio::task::spawn_blocking(crate::password::warm_up);
        }
        Ok(())
    }
}
