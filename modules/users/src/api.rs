//! The users controller: `/api/v1/users/*`.

use std::sync::Arc;

use app_core::openapi::{JsonBodies, SerdeJson, WrittenJson};
use app_core::{
    AdminAuth, ApiError, BearerAuth, FieldError, Problems, Role, Timestamp,
    problem::markers::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable},
};
use poem_openapi::{Object, OpenApi, Tags, param::Path, payload::Json};
use shaku::HasComponent;
use uuid::Uuid;

use crate::{User, UserName, UsersService};

#[derive(Tags)]
enum UsersTags {
    /// Profiles: the caller's own, and any user's for admins.
    Users,
}

/// A user account. Never carries the password hash.
// Sent by serde (`SerdeJson`): its serde form is its OpenAPI form, tested below.
#[derive(Debug, Clone, PartialEq, Object, serde::Serialize)]
#[oai(rename = "User", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    /// The user's id (UUID v7).
    pub id: Uuid,
    /// The email, normalized to lower case.
    pub email: String,
    /// The display name.
    pub name: String,
    /// `user` or `admin`.
    pub role: Role,
    /// When the account was created (RFC 3339, UTC).
    pub created_at: Timestamp,
    /// When the account last changed (RFC 3339, UTC).
    pub updated_at: Timestamp,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        UserDto {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
            created_at: u.created_at.into(),
            updated_at: u.updated_at.into(),
        }
    }
}

/// Changes to the caller's profile; absent fields stay as they are.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct UpdateMe {
    /// The new display name: 1 to 100 characters, surrounding spaces trimmed.
    #[oai(validator(min_length = 1, max_length = 100))]
    name: Option<String>,
}

/// `/api/v1/users/*`.
pub struct UsersApi {
    service: Arc<dyn UsersService>,
    /// Profiles' bodies as last written, by user: a profile read again unchanged (the SPA's
    /// most frequent call) is answered with the same bytes.
    bodies: JsonBodies<Uuid, UserDto>,
}

impl UsersApi {
    /// At most this many profiles' bodies are kept (about 300 bytes each, with the profile).
    const BODIES: usize = 10_000;

    /// The controller, with its service resolved from the module.
    pub fn new<M: HasComponent<dyn UsersService> + ?Sized>(module: &M) -> Self {
        Self { service: module.resolve(), bodies: JsonBodies::new(Self::BODIES) }
    }
}

#[OpenApi(prefix_path = "/api/v1/users", tag = "UsersTags::Users")]
impl UsersApi {
    /// The caller's profile
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(
        &self,
        auth: BearerAuth,
    ) -> Result<WrittenJson<UserDto>, Problems<(Unauthorized, NotFound, Unavailable)>> {
        let user = self.service.get(auth.0.user_id).await?;
        Ok(self.bodies.body(user.id, user.into())?)
    }

    /// Update the caller's profile
    ///
    /// Only `name` can change here. Unknown fields are ignored.
    #[oai(path = "/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        auth: BearerAuth,
        body: Json<UpdateMe>,
    ) -> Result<SerdeJson<UserDto>, Problems<(BadRequest, Unauthorized, NotFound, Unavailable)>> {
        let user = match &body.0.name {
            None => self.service.get(auth.0.user_id).await?,
            Some(raw) => {
                let name = UserName::parse(raw).ok_or_else(|| {
                    ApiError::validation(vec![FieldError::new("name", "must not be blank or hold control characters")])
                })?;
                self.service.rename(auth.0.user_id, &name).await?
            }
        };
        Ok(SerdeJson(user.into()))
    }

    /// Any user's profile (admin only)
    #[oai(path = "/:id", method = "get", operation_id = "getUser")]
    async fn get(
        &self,
        _auth: AdminAuth,
        id: Path<Uuid>,
    ) -> Result<WrittenJson<UserDto>, Problems<(Unauthorized, Forbidden, NotFound, Unavailable)>> {
        let user = self.service.get(id.0).await?;
        Ok(self.bodies.body(user.id, user.into())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_serde_form_is_its_openapi_form() {
        for role in [Role::User, Role::Admin] {
            let dto = UserDto {
                id: Uuid::now_v7(),
                email: "ada@example.com".into(),
                name: "Ada \"Countess\" Lovelace ✓".into(),
                role,
                created_at: Timestamp::from_millis(1_795_000_000_123),
                updated_at: Timestamp::from_millis(1_795_000_000_000),
            };
            assert!(app_core::openapi::same_forms(&dto), "{dto:?}");
        }
    }
}
