//! `app user ...`: account administration from the command line (the way to create the first
//! admin). Role changes and deletions end the user's sessions, so the shared Redis must be
//! reachable; with the memory backend, sessions live inside the running server, which the CLI
//! cannot reach (restart the server, or use Redis).

use std::time::Duration;

use app_auth::{AuthContainer, AuthService};
use app_core::{Role, config::Config};
use app_redis::{RedisConfig, SharedState};
use app_users::{Email, UserName, UserRepository};
use shaku::HasComponent;

use crate::cli::UserCommand;

/// Runs one account command; `Ok` carries the line to print.
pub async fn run(config: Config, command: UserCommand, stdin_password: Option<String>) -> Result<String, String> {
    let connect_timeout = config.get::<RedisConfig>().connect_timeout.max(Duration::from_secs(2));
    let outcome = crate::app::with_modules(crate::modules(), config, async |values| {
        let state = values.get::<SharedState>().ok_or("the app has no shared state")?;
        if let Some(redis) = state.redis()
            && !redis.wait_connected(connect_timeout).await
        {
            return Err("Redis is not reachable; nothing was changed (sessions must be revocable)".to_owned());
        }
        let container = values.get::<AuthContainer>().ok_or("the app has no auth module")?;
        let result = command_on(&container, command, stdin_password).await;
        Ok(match &*state {
            SharedState::Memory => result.map(|line| {
                format!(
                    "{line}\nnote: shared state is in memory (no REDIS_URL): sessions live in the running server; \
                     restart it to end them"
                )
            }),
            SharedState::Redis(_) => result,
        })
    })
    .await
    .map_err(|e| e.to_string())?;
    outcome?
}

async fn command_on(
    container: &AuthContainer,
    command: UserCommand,
    stdin_password: Option<String>,
) -> Result<String, String> {
    let auth: &dyn AuthService = container.resolve_ref();
    let users: &dyn UserRepository = container.resolve_ref();
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
    match command {
        UserCommand::Create { email, name, admin } => {
            let password = stdin_password.unwrap_or_default();
            let chars = password.chars().count();
            if !email_address::EmailAddress::is_valid(&email) {
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
    }
}
