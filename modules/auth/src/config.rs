//! `[auth]`: secrets, token and session lifetimes.

use std::time::Duration;

use app_core::config::{ConfigIssue, ConfigSection, Profile, Row, Secret, Validate};
use serde::{Deserialize, Deserializer, Serialize};

/// The development default of `auth.jwt_secret`; production refuses it.
pub const DEV_JWT_SECRET: &str = "development-only-jwt-secret-do-not-use-in-production";
/// The development default of `auth.session_encryption_key`; production refuses it.
pub const DEV_SESSION_KEY: &str = "development-only-session-key-do-not-use-in-production";

/// `[auth]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC key signing access tokens; at least 32 bytes. Env: `JWT_SECRET`.
    pub jwt_secret: Secret,
    /// Key material encrypting sessions at rest; at least 32 bytes. Env: `SESSION_ENCRYPTION_KEY`.
    pub session_encryption_key: Secret,
    /// Keys that encrypted sessions before the current one (comma-separated in env). They still
    /// decrypt, so rotating the key does not log anyone out; new writes use the current key.
    #[serde(deserialize_with = "secret_list")]
    pub previous_session_encryption_keys: Vec<Secret>,
    /// The access token's `iss`.
    pub issuer: String,
    /// The access token's `aud`.
    pub audience: String,
    /// How long an access token is valid. Revocation is immediate regardless (the session is
    /// checked on every request); this bounds how often the SPA refreshes.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// A session unused for this long ends (each request and refresh extends it).
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// A session ends this long after login, however active.
    #[serde(with = "humantime_serde")]
    pub session_absolute_timeout: Duration,
    /// Sessions kept per user; a login beyond it ends that user's oldest session.
    pub max_sessions_per_user: u32,
    /// How long after a rotation the just-rotated refresh token is answered with the same
    /// successor again (two tabs racing, a retry after a lost reply) instead of counting as
    /// reuse. `0s` treats every second use as theft.
    #[serde(with = "humantime_serde")]
    pub refresh_race_grace: Duration,
    /// Whether the refresh cookie is `Secure`; unset means "outside development".
    pub cookie_secure: Option<bool>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::default(),
            session_encryption_key: Secret::default(),
            previous_session_encryption_keys: Vec::new(),
            issuer: "spa-backend".into(),
            audience: "spa".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            session_idle_timeout: Duration::from_secs(7 * 24 * 3600),
            session_absolute_timeout: Duration::from_secs(30 * 24 * 3600),
            max_sessions_per_user: 20,
            refresh_race_grace: Duration::from_secs(10),
            cookie_secure: None,
        }
    }
}

fn secret_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Secret>, D::Error> {
    let list = app_core::config::string_list(deserializer)?;
    Ok(list.into_iter().map(Secret::new).collect())
}

impl AuthConfig {
    /// Fills missing secrets with the development defaults (development profile only) and
    /// returns the keys that were filled, so start-up can say so.
    pub fn apply_development_defaults(&mut self) -> Vec<&'static str> {
        let mut filled = Vec::new();
        if self.jwt_secret.is_empty() {
            self.jwt_secret = Secret::new(DEV_JWT_SECRET);
            filled.push("auth.jwt_secret");
        }
        if self.session_encryption_key.is_empty() {
            self.session_encryption_key = Secret::new(DEV_SESSION_KEY);
            filled.push("auth.session_encryption_key");
        }
        filled
    }

    /// Whether the refresh cookie carries `Secure` under `profile`.
    pub fn cookie_secure(&self, profile: Profile) -> bool {
        self.cookie_secure.unwrap_or(profile.is_production())
    }
}

impl ConfigSection for AuthConfig {
    const KEY: &'static str = "auth";
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("JWT_SECRET", "auth.jwt_secret"), ("SESSION_ENCRYPTION_KEY", "auth.session_encryption_key")];

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new("auth.jwt_secret", "access-token signing key, at least 32 bytes (production: required)")
                .default_text("development default"),
            Row::new(
                "auth.session_encryption_key",
                "session encryption key material, at least 32 bytes (production: required)",
            )
            .default_text("development default"),
            Row::new(
                "auth.previous_session_encryption_keys",
                "former session keys (comma-separated): they still decrypt, so rotating the key logs nobody out",
            ),
            Row::new("auth.issuer", "the access token's `iss`"),
            Row::new("auth.audience", "the access token's `aud`"),
            Row::new("auth.access_token_ttl", "access-token lifetime (revocation is immediate regardless)"),
            Row::new(
                "auth.session_idle_timeout",
                "a session unused this long ends; every request and refresh extends it",
            ),
            Row::new("auth.session_absolute_timeout", "a session ends this long after login, however active"),
            Row::new("auth.max_sessions_per_user", "sessions kept per user; one more login ends the oldest"),
            Row::new(
                "auth.refresh_race_grace",
                "how long a just-rotated refresh token is answered with the same successor again (two tabs racing, \
                 a retry after a lost reply) instead of revoking the session; `0s`: every second use revokes",
            ),
            Row::new("auth.cookie_secure", "whether the refresh cookie is `Secure`")
                .default_text("`true` outside development"),
        ]
    }

    fn finish(&mut self, profile: Profile) -> Option<String> {
        if profile.is_production() {
            return None;
        }
        let filled = self.apply_development_defaults();
        (!filled.is_empty()).then(|| {
            format!(
                "{} not set: using the development defaults, which anyone reading the source can use to forge \
                 tokens; set JWT_SECRET and SESSION_ENCRYPTION_KEY (the production profile requires them)",
                filled.join(" and ")
            )
        })
    }
}

impl Validate for AuthConfig {
    fn validate(&self, profile: Profile) -> Result<(), ConfigIssue> {
        for (key, env, secret, dev) in [
            ("auth.jwt_secret", "JWT_SECRET", &self.jwt_secret, DEV_JWT_SECRET),
            ("auth.session_encryption_key", "SESSION_ENCRYPTION_KEY", &self.session_encryption_key, DEV_SESSION_KEY),
        ] {
            if profile.is_production() {
                if secret.is_empty() {
                    return Err(ConfigIssue::new(key, format!("is required in production (set {env})")));
                }
                if secret.expose() == dev {
                    return Err(ConfigIssue::new(key, "is the development default; production needs a real secret"));
                }
            }
            if !secret.is_empty() && secret.len() < 32 {
                return Err(too_short(key, secret.len()));
            }
        }
        if let Some(short) = self.previous_session_encryption_keys.iter().find(|k| k.len() < 32) {
            return Err(too_short("auth.previous_session_encryption_keys", short.len()));
        }
        for (key, value) in [("auth.issuer", &self.issuer), ("auth.audience", &self.audience)] {
            if value.trim().is_empty() {
                return Err(ConfigIssue::new(key, "must not be empty"));
            }
        }
        if self.access_token_ttl < Duration::from_secs(10) {
            return Err(ConfigIssue::new("auth.access_token_ttl", "must be at least 10s"));
        }
        if self.session_idle_timeout < Duration::from_secs(1) {
            return Err(ConfigIssue::new("auth.session_idle_timeout", "must be at least 1s"));
        }
        if self.session_absolute_timeout < Duration::from_secs(1) {
            return Err(ConfigIssue::new("auth.session_absolute_timeout", "must be at least 1s"));
        }
        if !(1..=1000).contains(&self.max_sessions_per_user) {
            return Err(ConfigIssue::new("auth.max_sessions_per_user", "must be between 1 and 1000"));
        }
        Ok(())
    }
}

fn too_short(key: &str, len: usize) -> ConfigIssue {
    ConfigIssue::new(
        key,
        format!("is too short ({len} bytes); use at least 32 random bytes, e.g. `openssl rand -base64 48`"),
    )
}
