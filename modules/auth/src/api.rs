//! The auth controller: `/api/v1/auth/*` and the admin session route.

use std::sync::Arc;

use app_core::{
    AdminAuth, BearerAuth, Problems, Role, Timestamp,
    problem::markers::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable},
    throttle::ThrottleRule,
};
use app_users::{Email, EmailTaken, UserDto, UserName};
use poem::{Request, http::header};
use poem_openapi::{
    ApiResponse, Object, OpenApi, Tags,
    param::Path,
    payload::Json,
    types::{Email as EmailAddress, Password},
};
use shaku::HasComponent;
use uuid::Uuid;

use crate::{
    AuthError,
    error::{BadLogin, RefreshRefused},
    service::{AuthService, ClientInfo, Issued, SessionInfo},
};

// Login and registration count against `auth` (client address + the account named: 5 per 15
// min, then a 15 min block), `auth_account` (the account alone, from any address: 20 per 15
// min) and `auth_ip` (the address alone, whatever the account: 100 per 15 min). A request one
// of them refuses is counted by none (see the throttle guard), so an attacker on one address
// spends at most `auth`'s 5 of a victim's 20 per window and block, and cannot lock the victim
// out of logging in from elsewhere; rotating addresses buys at most `auth_account`'s allowance
// per account; `auth_ip` bounds one address trying many accounts. Refresh passes the default
// policy alone before its token is verified (what an unverified token names keys nothing a
// neighbour could spend), and its failures count against `auth_ip` once they are known.
static REGISTER_LIMITS: ThrottleRule =
    ThrottleRule::new("register", &["auth", "auth_account", "auth_ip"]).account(email_of);
static LOGIN_LIMITS: ThrottleRule = ThrottleRule::new("login", &["auth", "auth_account", "auth_ip"]).account(email_of);
static REFRESH_LIMITS: ThrottleRule = ThrottleRule::new("refresh", &[]).failures("auth_ip");
// Logging out is never refused for the default policy: a client at its limit can still end
// its session (the route needs a live session, and revoking it is one Redis call).
static LOGOUT_UNLIMITED: ThrottleRule = ThrottleRule::skip("logout");

/// The rate-limit rules of the auth operations.
pub const RULES: &[&ThrottleRule] = &[&REGISTER_LIMITS, &LOGIN_LIMITS, &REFRESH_LIMITS, &LOGOUT_UNLIMITED];

/// The `email` of a login or registration body.
fn email_of(_: &Request, body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(value.get("email")?.as_str()?.trim().to_lowercase())
}

/// The refresh cookie's name.
pub const REFRESH_COOKIE: &str = "refresh_token";
/// The refresh cookie's path: only the auth routes ever see it.
const COOKIE_PATH: &str = "/api/v1/auth";
/// The longest `User-Agent` kept in a session.
const MAX_USER_AGENT: usize = 256;

#[derive(Tags)]
enum AuthTags {
    /// Accounts, tokens and sessions.
    Auth,
    /// Administration (role `admin`).
    Admin,
}

/// A new account.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct RegisterRequest {
    /// The email address; compared case-insensitively and stored in lower case.
    #[oai(validator(max_length = 254))]
    email: EmailAddress,
    /// 8 to 128 characters, any characters, used exactly as sent (no trimming, no
    /// composition rules).
    #[oai(validator(min_length = 8, max_length = 128))]
    password: Password,
    /// The display name: 1 to 100 characters (surrounding spaces are trimmed).
    #[oai(validator(min_length = 1, max_length = 100))]
    name: String,
}

/// Credentials.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct LoginRequest {
    /// The email address the account was registered with (any case).
    #[oai(validator(max_length = 254))]
    email: EmailAddress,
    /// The password, exactly as registered.
    #[oai(validator(min_length = 1, max_length = 1024))]
    password: Password,
}

/// A refresh request. Send `refreshToken`; or no body at all (or `{}`) and let the browser send
/// the `refresh_token` cookie set at login.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    refresh_token: Option<String>,
}

/// Tokens for a session.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct TokenPair {
    /// The JWT to send as `Authorization: Bearer <accessToken>`.
    access_token: String,
    /// The opaque refresh token. It works once: each refresh returns a new one. Presenting a
    /// used one again revokes the session.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Seconds until the session ends unless used again (the idle timeout, capped by the
    /// absolute one).
    refresh_expires_in: u64,
    /// The session these tokens belong to.
    session_id: String,
}

/// One of the caller's sessions.
#[derive(Debug, Object)]
#[oai(rename = "Session", rename_all = "camelCase")]
struct SessionDto {
    /// The session id (use it with `DELETE /api/v1/auth/sessions/{id}`).
    id: String,
    /// When the session was created (login).
    created_at: Timestamp,
    /// When it was last used.
    last_seen_at: Timestamp,
    /// When it ends unless used again.
    expires_at: Timestamp,
    /// The IP address of the login.
    ip: Option<String>,
    /// The `User-Agent` of the login.
    user_agent: Option<String>,
    /// Whether this is the session of the token making this request.
    current: bool,
}

fn time(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[derive(ApiResponse)]
enum RegisterResponse {
    /// The account was created. `Location` is the user's resource.
    #[oai(status = 201)]
    Created(Json<UserDto>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum TokenResponse {
    /// A new session's tokens. The refresh token is also set as an `HttpOnly; SameSite=Strict`
    /// cookie scoped to `/api/v1/auth` (`Secure` outside development).
    #[oai(status = 200)]
    Ok(Json<TokenPair>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
enum LogoutResponse {
    /// Done; the refresh cookie is cleared.
    #[oai(status = 204)]
    NoContent(#[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// `/api/v1/auth/*` and `DELETE /api/v1/admin/users/{id}/sessions`.
pub struct AuthApi {
    service: Arc<dyn AuthService>,
    secure_cookie: bool,
}

impl AuthApi {
    /// The controller; `secure_cookie` marks the refresh cookie `Secure` (outside development).
    pub fn new<M: HasComponent<dyn AuthService> + ?Sized>(module: &M, secure_cookie: bool) -> Self {
        Self { service: module.resolve(), secure_cookie }
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!("{REFRESH_COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
    }

    fn tokens(&self, issued: Issued) -> TokenResponse {
        let cookie = self.cookie(&issued.refresh_token, issued.refresh_expires_in);
        TokenResponse::Ok(
            Json(TokenPair {
                access_token: issued.access_token,
                refresh_token: issued.refresh_token,
                token_type: "Bearer".into(),
                expires_in: issued.expires_in,
                refresh_expires_in: issued.refresh_expires_in,
                session_id: issued.session_id,
            }),
            cookie,
        )
    }
}

fn client_info(req: &Request) -> ClientInfo {
    // The client address as the rate limiter resolves it (trusted proxies considered), else
    // the peer.
    let ip = match app_core::throttle::handle(req) {
        Some(handle) => Some(app_core::throttle::client_ip(&*handle.throttler, req).to_string()),
        None => req.remote_addr().as_socket_addr().map(|a| a.ip().to_string()),
    };
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| {
        let mut end = ua.len().min(MAX_USER_AGENT);
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        ua[..end].to_owned()
    });
    ClientInfo { ip, user_agent }
}

fn refresh_cookie(req: &Request) -> Option<String> {
    req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == REFRESH_COOKIE && !value.is_empty()).then(|| value.to_owned())
        },
    )
}

impl From<SessionInfo> for SessionDto {
    fn from(s: SessionInfo) -> Self {
        SessionDto {
            id: s.id,
            created_at: time(s.created_at_ms),
            last_seen_at: time(s.last_seen_at_ms),
            expires_at: time(s.expires_at_ms),
            ip: s.client.ip,
            user_agent: s.client.user_agent,
            current: false,
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "AuthTags::Auth")]
impl AuthApi {
    /// Register
    ///
    /// Creates an account with the role `user`. It does not log in: call `/auth/login` next.
    /// Its policies count as `login`'s do.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        body: Json<RegisterRequest>,
    ) -> Result<RegisterResponse, Problems<(BadRequest, EmailTaken, Unavailable)>> {
        let RegisterRequest { email, password, name } = body.0;
        let (email, password) = (email.0, password.0);
        let name = UserName::parse(&name).ok_or_else(|| {
            app_core::ApiError::validation(vec![app_core::FieldError::new(
                "name",
                "must not be blank or hold control characters",
            )])
        })?;
        let user = self.service.register(Email::normalize(&email), password, name, Role::User).await?;
        let location = format!("/api/v1/users/{}", user.id);
        Ok(RegisterResponse::Created(Json(user.into()), location))
    }

    /// Log in
    ///
    /// Opens a session. An unknown email and a wrong password get the same answer
    /// (`INVALID_CREDENTIALS`) in about the same time. Its policies count, by default: `auth`
    /// the client address and email (5 per 15 min, then blocked for 15 min), `auth_account` the
    /// email from any address (20 per 15 min), `auth_ip` the address whatever the email (100 per
    /// 15 min). A request one of them refuses is counted by none.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<TokenResponse, Problems<(BadRequest, BadLogin, Unavailable)>> {
        let LoginRequest { email, password } = body.0;
        let (email, password) = (email.0, password.0);
        let issued = self.service.login(Email::normalize(&email), password, client_info(req)).await?;
        Ok(self.tokens(issued))
    }

    /// Refresh the tokens
    ///
    /// Exchanges a refresh token (from the body, or else the `refresh_token` cookie) for a new
    /// pair. A refresh token works once: presenting one that was already rotated is treated as
    /// theft and revokes the session (401 `REFRESH_TOKEN_REUSED`). Two tabs racing (or a retry
    /// after a lost reply) are the exception: within `auth.refresh_race_grace` (10 s) of its
    /// rotation, the same token gets the same new refresh token again, so the session never
    /// forks and nobody is logged out. A 401 also clears the refresh cookie. A valid token is
    /// never refused by someone else's failures: only failed refreshes count (against
    /// `auth_ip`, by address), and only failures are answered 429 once the address spent it.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        req: &Request,
        body: Json<Option<RefreshRequest>>,
    ) -> Result<TokenResponse, Problems<(BadRequest, RefreshRefused, Conflict, Unavailable)>> {
        let token = body.0.and_then(|b| b.refresh_token).or_else(|| refresh_cookie(req)).ok_or_else(|| {
            app_core::ApiError::validation(vec![app_core::FieldError::new(
                "refreshToken",
                "is required (or send the refresh_token cookie)",
            )])
        })?;
        match self.service.refresh(&token).await {
            Ok(issued) => Ok(self.tokens(issued)),
            // A refresh token that no longer works is dropped from the browser too.
            Err(err) => {
                let mut err = app_core::ApiError::from(err);
                if err.status() != poem::http::StatusCode::UNAUTHORIZED {
                    return Err(err.into());
                }
                if let Err(limited) = app_core::throttle::charge_failure(req).await {
                    err = limited;
                }
                let clear = poem::http::HeaderValue::from_str(&self.cookie("", 0)).expect("a valid cookie header");
                Err(err.with_header(header::SET_COOKIE, clear).into())
            }
        }
    }

    /// Log out
    ///
    /// Ends the current session on every instance at once; its tokens stop working.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, auth: BearerAuth) -> Result<LogoutResponse, Problems<(Unauthorized, Unavailable)>> {
        match self.service.revoke_session(auth.0.user_id, &auth.0.session_id).await {
            Ok(()) | Err(AuthError::SessionNotFound) => Ok(LogoutResponse::NoContent(self.cookie("", 0))),
            Err(other) => Err(other.into()),
        }
    }

    /// Log out everywhere
    ///
    /// Ends every session of the caller, this one included.
    #[oai(path = "/auth/logout-all", method = "post", operation_id = "logoutAll")]
    async fn logout_all(&self, auth: BearerAuth) -> Result<LogoutResponse, Problems<(Unauthorized, Unavailable)>> {
        self.service.revoke_all(auth.0.user_id).await?;
        Ok(LogoutResponse::NoContent(self.cookie("", 0)))
    }

    /// List my sessions
    ///
    /// The caller's live sessions, oldest first, as a plain array: a user has at most
    /// `auth.max_sessions_per_user` sessions (20 by default; a login beyond it ends the oldest).
    #[oai(path = "/auth/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(&self, auth: BearerAuth) -> Result<Json<Vec<SessionDto>>, Problems<(Unauthorized, Unavailable)>> {
        let sessions = self.service.sessions(auth.0.user_id).await?;
        Ok(Json(
            sessions
                .into_iter()
                .map(|s| {
                    let current = *s.id == *auth.0.session_id;
                    SessionDto { current, ..s.into() }
                })
                .collect(),
        ))
    }

    /// Revoke one of my sessions
    ///
    /// Ends the session on every instance at once. Someone else's session id is a 404.
    #[oai(path = "/auth/sessions/:id", method = "delete", operation_id = "revokeSession")]
    async fn revoke(
        &self,
        auth: BearerAuth,
        id: Path<String>,
    ) -> Result<NoContent, Problems<(Unauthorized, NotFound, Unavailable)>> {
        self.service.revoke_session(auth.0.user_id, &id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Revoke every session of a user (admin only)
    #[oai(
        path = "/admin/users/:id/sessions",
        method = "delete",
        operation_id = "revokeUserSessions",
        tag = "AuthTags::Admin"
    )]
    async fn revoke_user(
        &self,
        _auth: AdminAuth,
        id: Path<Uuid>,
    ) -> Result<NoContent, Problems<(Unauthorized, Forbidden, Unavailable)>> {
        self.service.revoke_all(id.0).await?;
        Ok(NoContent::NoContent)
    }
}
