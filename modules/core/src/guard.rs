//! Guards declared on operations, as NestJS declares `@UseGuards(..)` and `@Roles(..)`.
//!
//! - [`BearerAuth`]: the bearer guard. Taking it as an operation parameter puts the operation
//!   under the `bearer` security scheme (Swagger UI's "Authorize" button) and declares its 401.
//!   It takes the session check the screen ran for the request's token, or hands the token to
//!   the [`SessionVerifier`] port that the auth module implements and `src/` installs as request
//!   data ([`Guards`]), so feature modules never depend on auth.
//! - [`AdminAuth`]: the same bearer scheme plus the role guard (403 for other roles). Operations
//!   that take it declare `markers::Forbidden` in their `Problems` set.
//!
//! Tokens are read from the `Authorization` header only, never from a query string (where they
//! would end up in access logs and browser history).

use std::sync::Arc;

use async_trait::async_trait;
use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, Enum, ExtractParamOptions,
    auth::{Bearer, BearerAuthorization},
    registry::{MetaSecurityScheme, Registry},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ApiError;

/// A user's role. Roles are ordered by power only in the sense the role guard checks: `admin`
/// passes every guard `user` passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Role {
    /// A regular user.
    User,
    /// An administrator: may read other users and revoke their sessions.
    Admin,
}

impl Role {
    /// The role's name as stored and sent (`user`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling: the user and the session behind a verified bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: Uuid,
    /// The session the access token is bound to.
    pub session_id: Arc<str>,
    /// The user's role, as recorded in the session (a role change ends the user's sessions).
    pub role: Role,
}

/// The port behind the bearer guard: turns an access token into a [`Principal`], or into the
/// 401 / 503 problem the client should see.
#[async_trait]
pub trait SessionVerifier: Send + Sync + 'static {
    /// Verifies `token` and the live session it is bound to.
    async fn verify(&self, token: &str) -> Result<Principal, ApiError>;

    /// Checks that `user`'s session `session` is still live (and counts as its use): for what
    /// outlives one request, such as an event stream, which re-checks it as it runs.
    async fn check_session(&self, user: Uuid, session: &str) -> Result<Principal, ApiError>;

    /// The codes its 401 answers carry beyond `UNAUTHENTICATED` (the spec lists them on every
    /// guarded operation).
    fn codes(&self) -> &'static [crate::ErrorCode] {
        &[]
    }

    /// Checks `token` in process (signature, expiry, type) and, when it passes, returns the
    /// user it names and the session check still to run. Used before routing: the user picks
    /// the rate-limit subject, and the session check runs together with the limiter. The token
    /// comes as the header's bytes: one already verified is found by comparing them, and only
    /// another is checked for UTF-8 (about 270 instructions per request for a 300-byte token).
    fn begin(&self, token: &[u8]) -> Option<(Uuid, SessionCheck)>;
}

/// A session check to await (from [`SessionVerifier::begin`]).
pub type SessionCheck = futures::future::BoxFuture<'static, Result<Principal, ApiError>>;

/// A session check done before routing (together with the default rate-limit policy, so both
/// travel in one Redis pipeline); the bearer guard uses it instead of checking again.
#[derive(Clone)]
pub struct PreVerified {
    /// The `Authorization` header whose token was checked (a shared handle on the request's
    /// bytes, not a copy).
    pub authorization: poem::http::HeaderValue,
    /// The user the token names (verified in process; the session check may still refuse it).
    /// Rate-limit policies that count users count this one.
    pub user: Uuid,
    /// What the check found.
    pub result: Result<Principal, ApiError>,
}

/// The session verifier, one of the [`GuardPorts`].
#[derive(Clone)]
pub struct Verifier(pub Arc<dyn SessionVerifier>);

/// The ports behind the guards (the session verifier, the throttler), made once by the
/// composition root and shared by every request.
#[derive(Clone, Default)]
pub struct GuardPorts {
    /// The bearer guard's session verifier.
    pub verifier: Option<Verifier>,
    /// The throttle guard's limiter and the operations' rules.
    pub throttle: Option<crate::throttle::ThrottleHandle>,
}

/// What a request's guards work with, installed by the composition root as one request datum:
/// the shared ports, and the session check the screen ran before routing. (Each datum is an
/// entry, boxed, in the request's map: one value and one reference count, not a datum and a
/// clone for each port.)
#[derive(Clone)]
pub struct Guards {
    pub(crate) ports: Arc<GuardPorts>,
    pub(crate) pre: Option<PreVerified>,
}

impl Guards {
    /// The ports, with no session checked yet.
    pub fn new(ports: Arc<GuardPorts>) -> Self {
        Self { ports, pre: None }
    }
}

/// The session verifier installed on `req`, if any.
pub fn verifier(req: &Request) -> Option<&Verifier> {
    req.data::<Guards>()?.ports.verifier.as_ref()
}

/// The bearer guard: a valid access token bound to a live session.
pub struct BearerAuth(pub Principal);

/// The bearer guard plus the role guard: the caller must be an `admin` (403 otherwise).
pub struct AdminAuth(pub Principal);

/// The scheme both guards put their operations under (Swagger UI's "Authorize" button).
const SCHEME: &str = "bearer";

/// The scheme's description in the spec.
const SCHEME_DESCRIPTION: &str =
    "An access token (the module that issues them says where from), sent as `Authorization: Bearer <token>`.";

/// Registers the scheme as poem-openapi's `SecurityScheme` derive (`ty = "bearer"`,
/// `bearer_format = "JWT"`) does. The guards' extractors are written out rather than derived so
/// that a token the screen already checked is taken as checked: the derived extractor parses
/// the header into a fresh string and unwraps the query datum before its checker runs.
fn register_scheme(registry: &mut Registry) {
    registry.create_security_scheme(
        SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some(SCHEME_DESCRIPTION),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// A bearer guard's extractor: the scheme, and the principal [`verify`] finds, held to `$role`
/// when one is named.
macro_rules! bearer_guard {
    ($guard:ident, $role:expr) => {
        impl<'a> ApiExtractor<'a> for $guard {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut Registry) {
                register_scheme(registry);
            }

            fn security_schemes() -> Vec<&'static str> {
                vec![SCHEME]
            }

            async fn from_request(
                req: &'a Request,
                _: &mut RequestBody,
                _: ExtractParamOptions<()>,
            ) -> poem::Result<Self> {
                let principal = verify(req).await?;
                let role: Option<Role> = $role;
                if let Some(role) = role {
                    require_role(&principal, role)?;
                }
                Ok(Self(principal))
            }
        }
    };
}

bearer_guard!(BearerAuth, None);
bearer_guard!(AdminAuth, Some(Role::Admin));

/// The principal behind the request's bearer token: the screen's session check when it checked
/// this very header (the one `Authorization` header a screened request may carry), the
/// verifier's answer otherwise. No bearer token is a 401, as poem-openapi's bearer scheme
/// answers it.
async fn verify(req: &Request) -> poem::Result<Principal> {
    let header = req.headers().get(header::AUTHORIZATION);
    if let Some(pre) = req.data::<Guards>().and_then(|g| g.pre.as_ref())
        && header == Some(&pre.authorization)
    {
        return Ok(pre.result.clone()?);
    }
    let bearer = <Bearer as BearerAuthorization>::from_request(req)?;
    let Some(Verifier(verifier)) = verifier(req) else {
        return Err(ApiError::internal("no session verifier is installed").into());
    };
    Ok(verifier.verify(&bearer.token).await?)
}

/// The token of an `Authorization: Bearer <token>` header value, as bytes (no copy, no
/// character checks: the bearer guard only compares them).
pub(crate) fn bearer_bytes(value: &poem::http::HeaderValue) -> Option<&[u8]> {
    let bytes = value.as_bytes();
    let space = bytes.iter().position(|b| *b == b' ')?;
    let token = bytes[space + 1..].trim_ascii();
    (bytes[..space].eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(value: &poem::http::HeaderValue) -> Option<&str> {
    std::str::from_utf8(bearer_bytes(value)?).ok()
}

/// The role guard's rule: `admin` passes every check, `user` only checks for `user`.
pub fn require_role(principal: &Principal, role: Role) -> Result<(), ApiError> {
    if principal.role == role || principal.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("This operation requires the {} role", role.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal { user_id: Uuid::nil(), session_id: Arc::from("s"), role }
    }

    #[test]
    fn admins_pass_every_role_check_and_users_only_their_own() {
        assert!(require_role(&principal(Role::Admin), Role::Admin).is_ok());
        assert!(require_role(&principal(Role::Admin), Role::User).is_ok());
        assert!(require_role(&principal(Role::User), Role::User).is_ok());
        let err = require_role(&principal(Role::User), Role::Admin).expect_err("users are not admins");
        assert_eq!(err.status(), poem::http::StatusCode::FORBIDDEN);
    }

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_value() {
        let token = |v: &'static str| bearer_token(&poem::http::HeaderValue::from_static(v)).map(str::to_owned);
        assert_eq!(token("Bearer abc.def"), Some("abc.def".into()));
        assert_eq!(token("bearer   abc  "), Some("abc".into()), "any case, surrounding blanks trimmed");
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer    "), None);
        assert_eq!(token("Bearer"), None);
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [Role::User, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
