//! The user record and the validated values it is made of.

use app_core::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An account, without its password hash (which only [`Credentials`] carries). Serializable
/// for the profile cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// UUID v7: time-ordered.
    pub id: Uuid,
    /// Normalized (trimmed, lowercased).
    pub email: String,
    /// The display name.
    pub name: String,
    /// The role the guards check.
    pub role: Role,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When the account last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user together with the argon2id hash login verifies against.
#[derive(Clone)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password_hash", &"[redacted]").finish()
    }
}

/// An email address in its normalized form: trimmed and lowercased, so `Ann@Example.com` and
/// `ann@example.com` are one account. Format validation happens at the edge (the DTOs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalizes an address that already passed format validation.
    pub fn normalize(raw: &str) -> Self {
        Email(raw.trim().to_lowercase())
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// The longest name accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims `raw`; `None` when it is empty, too long, or holds control characters.
    pub fn parse(raw: &str) -> Option<Self> {
        let name = raw.trim();
        // No control characters (NUL among them, which PostgreSQL refuses to store).
        let valid = !name.is_empty() && name.chars().count() <= Self::MAX_CHARS && !name.chars().any(char::is_control);
        valid.then(|| UserName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What creating an account takes.
#[derive(Clone)]
pub struct NewUser {
    /// The normalized email.
    pub email: Email,
    /// The display name.
    pub name: UserName,
    /// The role.
    pub role: Role,
    /// The argon2id PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser").field("email", &self.email).field("role", &self.role).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(Email::normalize("  Ann@Example.COM ").as_str(), "ann@example.com");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ann ").expect("valid").as_str(), "Ann");
        assert!(UserName::parse("   ").is_none());
        assert!(UserName::parse(&"x".repeat(101)).is_none());
        assert!(UserName::parse(&"é".repeat(100)).is_some());
        assert!(UserName::parse("a\u{0}b").is_none());
    }
}
