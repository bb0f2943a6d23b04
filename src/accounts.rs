//! `app user ...`: account administration from the command line (the way to create the first
//! admin). Role changes and deletions end the user's sessions, so the shared Redis must be
//! reachable; with the memory backend, sessions live inside the running server, which the CLI
//! cannot reach (restart the server, or use Redis).

use std::time::Duration;

use app_auth::AuthService;
use app_core::Role;
use app_users::{Email, UserName, UserRepository};
use shaku::HasComponent;
use validator::ValidateEmail;

use crate::{
    AppConfig,
    app::{Backends, open_database},
    cli::UserCommand,
    module::{Overrides, build_modules},
};

/// Runs one account command; `Ok` carries the line to print.
pub async fn run(config: AppConfig, command: UserCommand, stdin_password: Option<String>) -> Result<String, String> {
    let backends = Backends::connect(&config).map_err(|e| e.to_string())?;
    if let Some(redis) = backends.state.redis()
        && !redis.wait_connected(config.redis.connect_timeout.max(Duration::from_secs(2))).await
    {
        return Err("Redis is not reachable; nothing was changed (sessions must be revocable)".into());
    }
    let database = open_database(&config).await.map_err(|e| e.to_string())?;
    let module = build_modules(&config, &backends, database.clone(), Default::default(), Overrides::default());
    let auth: &dyn AuthService = module.resolve_ref();
    let users: &dyn UserRepository = module.resolve_ref();
    let find = |email: &str| {
        let email = Email::normalize(email);
        async move {
            match users.find_credentials(&email).await {
                Ok(Some(c)) => Ok(c.user),
                Ok(None) => Err(format!("no user with the email {}", email.as_str())),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let result = match command {
        UserCommand::Create { email, name, admin } => {
            let password = stdin_password.unwrap_or_default();
            let chars = password.chars().count();
            if !email.validate_email() {
                Err("--email is not a valid email address".into())
            } else if !(8..=128).contains(&chars) {
                Err(format!("the password (read from standard input) must be 8 to 128 characters, not {chars}"))
            } else {
                let name = UserName::parse(&name).ok_or("--name must be 1 to 100 characters")?;
                let role = if admin { Role::Admin } else { Role::User };
                auth.register(Email::normalize(&email), password, name, role)
                    .await
                    .map(|u| format!("created {} ({}) with role {}", u.email, u.id, u.role.as_str()))
                    .map_err(|e| e.to_string())
            }
        }
        UserCommand::SetRole { email, role } => match find(&email).await {
            Ok(user) => auth
                .set_role(user.id, role.into())
                .await
                .map(|u| format!("{} now has the role {}; their sessions were ended", u.email, u.role.as_str()))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        UserCommand::Delete { email } => match find(&email).await {
            Ok(user) => auth
                .delete_user(user.id)
                .await
                .map(|()| format!("deleted {}; their sessions were ended", user.email))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
    };
    backends.close().await;
    database.close().await;
    match backends.state {
        app_redis::SharedState::Memory => result.map(|line| {
            format!("{line}\nnote: shared state is in memory (no REDIS_URL): sessions live in the running server; restart it to end them")
        }),
        app_redis::SharedState::Redis(_) => result,
    }
}
