//! Access tokens (JWT, HS256 pinned) and refresh tokens (opaque, stored hashed).
//!
//! An access token says who and which session (`sub`, `sid`) for a short time; the session
//! behind it is checked on every request, so revocation needs no token blacklist. A refresh
//! token is a random secret naming its session; only its SHA-256 is stored. The two can never
//! stand in for each other: a refresh token is not a JWT, and an access token has the wrong
//! shape for the refresh parser; access tokens also carry an explicit `typ` (header `at+jwt`,
//! claim `access`, RFC 9068 / RFC 8725 §3.11).

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AuthConfig;

/// The only algorithm accepted: tokens with any other `alg` (including `none`) are rejected.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// The header `typ` of access tokens (RFC 9068).
const HEADER_TYP: &str = "at+jwt";
/// The claim `typ` of access tokens.
const CLAIM_TYP: &str = "access";
/// Clock skew tolerated between instances, in seconds (jsonwebtoken's default of 60 is generous).
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    sid: String,
    iat: u64,
    /// Not before: a token is refused until then (with the leeway). Tokens issued before this
    /// claim existed lack it and are still taken (they expire within `auth.access_token_ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    exp: u64,
    typ: String,
}

/// What a valid access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`.
    pub user_id: Uuid,
    /// `sid` (shared: a remembered token's claims are handed out on every request, and the
    /// principal keeps the id, without a copy).
    pub session_id: Arc<str>,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Well-formed and signed, but past `exp`.
    #[error("the access token has expired")]
    Expired,
    /// Anything else: bad signature, wrong algorithm, wrong audience, not an access token.
    #[error("the access token is invalid")]
    Invalid,
}

/// Issues and verifies access tokens.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
    /// Tokens this instance verified, with what they say and when they expire (see
    /// [`AccessTokens::verify`]).
    verified: quick_cache::sync::Cache<Remembered, (AccessClaims, u64)>,
}

/// A verified token as [`AccessTokens`] remembers it, found by its end (see [`tail`]).
#[derive(PartialEq, Eq)]
struct Remembered(Arc<str>);

/// A presented token (the header's bytes) looking for its remembered self: the same hash, and
/// equal only to the same whole token.
struct Presented<'a>(&'a [u8]);

/// What a remembered token is hashed by: its last 32 bytes, which are its signature's (an HMAC:
/// as good as random, and unknown until the token is), where hashing all of it (about 300 bytes)
/// cost about 200 instructions per request. Only a lookup whose whole token is equal finds it.
fn tail(token: &[u8]) -> &[u8] {
    &token[token.len().saturating_sub(32)..]
}

impl std::hash::Hash for Remembered {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        tail(self.0.as_bytes()).hash(state);
    }
}

impl std::hash::Hash for Presented<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        tail(self.0).hash(state);
    }
}

impl quick_cache::Equivalent<Remembered> for Presented<'_> {
    fn equivalent(&self, key: &Remembered) -> bool {
        key.0.as_bytes() == self.0
    }
}

impl AccessTokens {
    /// How many verified tokens are remembered (about 300 bytes each).
    const REMEMBERED: usize = 10_000;
}

impl AccessTokens {
    /// From `[auth]`.
    pub fn new(cfg: &AuthConfig) -> Self {
        let secret = cfg.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(ALGORITHM);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            ttl: cfg.access_token_ttl,
            verified: quick_cache::sync::Cache::new(Self::REMEMBERED),
        }
    }

    /// The lifetime of the tokens this issues.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A signed access token for `user`'s session `sid`.
    pub fn issue(&self, user: Uuid, sid: &str) -> String {
        let iat = now_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            sid: sid.to_owned(),
            iat,
            nbf: Some(iat),
            exp: iat + self.ttl.as_secs(),
            typ: CLAIM_TYP.into(),
        };
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(HEADER_TYP.into());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("HS256 signing with a valid key cannot fail")
    }

    /// Verifies signature, algorithm, `iss`, `aud`, `exp` and `nbf` (with a small leeway) and `typ`.
    ///
    /// A token that verified is remembered until it expires: an SPA sends the same access token
    /// with every request of its lifetime, and checking it again (base64, two JSON documents, an
    /// HMAC) cost about a tenth of a guarded read's CPU. What a token says cannot change (its
    /// signature covers it), and only its own bytes find it (the map's hasher is keyed at
    /// random, so a guess cannot probe for a remembered token, and a lookup compares the whole
    /// token); `exp` is checked on every use.
    /// The session behind it is checked on every request as before.
    ///
    /// The token comes as it was sent (a header's bytes): a remembered one is found by comparing
    /// bytes, and only another is checked for UTF-8.
    pub fn verify(&self, token: &[u8]) -> Result<AccessClaims, TokenError> {
        if let Some((claims, exp)) = self.verified.get(&Presented(token)) {
            if now_secs() <= exp + LEEWAY_SECS {
                return Ok(claims);
            }
            self.verified.remove(&Presented(token));
        }
        let token = std::str::from_utf8(token).map_err(|_| TokenError::Invalid)?;
        let (claims, exp) = self.check(token)?;
        self.verified.insert(Remembered(Arc::from(token)), (claims.clone(), exp));
        Ok(claims)
    }

    /// [`verify`](Self::verify)'s full check; the claims and `exp`.
    fn check(&self, token: &str) -> Result<(AccessClaims, u64), TokenError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.header.typ.as_deref() != Some(HEADER_TYP) || data.claims.typ != CLAIM_TYP {
            return Err(TokenError::Invalid);
        }
        if !is_session_id(&data.claims.sid) {
            return Err(TokenError::Invalid);
        }
        let user_id = Uuid::parse_str(&data.claims.sub).map_err(|_| TokenError::Invalid)?;
        Ok((AccessClaims { user_id, session_id: data.claims.sid.into() }, data.claims.exp))
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A fresh session id: 128 random bits from the OS CSPRNG, base64url (22 characters).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` has the shape of a session id (so user input never builds odd Redis keys).
pub fn is_session_id(s: &str) -> bool {
    s.len() == 22 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An opaque refresh token: `rt1.<user id>.<session id>.<secret>`. The ids route it to its
/// session; the 256-bit secret is what proves possession (only its hash is stored).
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The user.
    pub user_id: Uuid,
    /// The session.
    pub session_id: String,
    secret: String,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken").field("session_id", &self.session_id).finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// A new token for a session.
    pub fn generate(user_id: Uuid, session_id: &str) -> Self {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        Self { user_id, session_id: session_id.to_owned(), secret: URL_SAFE_NO_PAD.encode(secret) }
    }

    /// Parses a presented token; `None` for anything malformed (including access tokens).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let (version, user, sid, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "rt1" || parts.next().is_some() || user.len() != 32 || !is_session_id(sid) {
            return None;
        }
        if secret.len() != 43 || URL_SAFE_NO_PAD.decode(secret).ok()?.len() != 32 {
            return None;
        }
        Some(Self { user_id: Uuid::try_parse(user).ok()?, session_id: sid.to_owned(), secret: secret.to_owned() })
    }

    /// The token that replaces this one at rotation: HMAC-SHA256 under the server's refresh key
    /// of the session id and this token's secret. Being deterministic, a request that repeats a
    /// refresh moments later (a second tab, a retry after a lost reply) gets the same successor
    /// back instead of a fork or a lock-out; nobody without the key can compute it.
    pub fn successor(&self, key: &RefreshKey) -> RefreshToken {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC accepts any key length");
        mac.update(self.session_id.as_bytes());
        mac.update(b".");
        mac.update(self.secret.as_bytes());
        RefreshToken {
            user_id: self.user_id,
            session_id: self.session_id.clone(),
            secret: URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
        }
    }

    /// The token as sent to the client.
    pub fn expose(&self) -> String {
        format!("rt1.{}.{}.{}", self.user_id.simple(), self.session_id, self.secret)
    }

    /// The stored form: SHA-256 of the secret, base64url. A high-entropy secret needs no salt
    /// or slow hash; the store compares hashes, so a leaked store reveals no usable token.
    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.secret.as_bytes()))
    }
}

/// The key successors of refresh tokens are derived with (from `auth.jwt_secret`, under its own
/// label, so it is never the signing key itself).
pub struct RefreshKey([u8; 32]);

impl RefreshKey {
    /// Derives the key from `[auth]`.
    pub fn new(cfg: &AuthConfig) -> Self {
        RefreshKey(
            Sha256::new()
                .chain_update(b"spa-backend refresh successor v1\0")
                .chain_update(cfg.jwt_secret.expose().as_bytes())
                .finalize()
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use app_core::config::Secret;

    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(&AuthConfig { jwt_secret: Secret::new("k".repeat(32)), ..AuthConfig::default() })
    }

    #[test]
    fn access_tokens_round_trip() {
        let (user, sid) = (Uuid::now_v7(), new_session_id());
        let claims = tokens().verify(tokens().issue(user, &sid).as_bytes()).expect("valid");
        assert_eq!(claims, AccessClaims { user_id: user, session_id: sid.into() });
    }

    /// A token signed with the test key carrying `claims` as they are.
    fn forged(claims: &Claims) -> String {
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(HEADER_TYP.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret("k".repeat(32).as_bytes())).expect("signed")
    }

    #[test]
    fn a_token_not_yet_valid_is_refused_and_one_without_nbf_is_taken() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let config = AuthConfig::default();
        let claims = |nbf: Option<u64>| Claims {
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            sub: Uuid::now_v7().to_string(),
            sid: new_session_id(),
            iat: now,
            nbf,
            exp: now + 600,
            typ: CLAIM_TYP.into(),
        };
        assert_eq!(tokens().verify(forged(&claims(Some(now + 120))).as_bytes()), Err(TokenError::Invalid), "nbf ahead");
        assert!(tokens().verify(forged(&claims(Some(now + LEEWAY_SECS - 1))).as_bytes()).is_ok(), "within the leeway");
        assert!(tokens().verify(forged(&claims(None)).as_bytes()).is_ok(), "issued before the claim existed");
    }

    #[test]
    fn a_remembered_token_expires_as_any_and_no_other_bytes_find_it() {
        let now = now_secs();
        let config = AuthConfig::default();
        let claims = Claims {
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            sub: Uuid::now_v7().to_string(),
            sid: new_session_id(),
            iat: now - 60,
            nbf: None,
            // Past, but within the leeway for a second or so.
            exp: now - LEEWAY_SECS + 1,
            typ: CLAIM_TYP.into(),
        };
        let (tokens, token) = (tokens(), forged(&claims));
        assert!(tokens.verify(token.as_bytes()).is_ok(), "within the leeway, and now remembered");
        assert!(tokens.verify(token.as_bytes()).is_ok(), "remembered");
        let mut tampered = token.clone();
        let last = tampered.pop().expect("a character");
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(tokens.verify(tampered.as_bytes()), Err(TokenError::Invalid));
        // The same signature (so the same hash) under another header: not the remembered token.
        let (_, rest) = token.split_once('.').expect("a JWT");
        let other_head = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(br#"{"typ":"at+jwt","alg":"HS256","kid":"x"}"#));
        assert_eq!(tail(other_head.as_bytes()), tail(token.as_bytes()));
        assert_eq!(tokens.verify(other_head.as_bytes()), Err(TokenError::Invalid));
        assert_eq!(tokens.verify(b"\xff\xfe.not.utf8"), Err(TokenError::Invalid), "bytes that are not text");
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(tokens.verify(token.as_bytes()), Err(TokenError::Expired), "remembered, and still expired on time");
    }

    #[test]
    fn another_key_or_audience_is_invalid() {
        let token = tokens().issue(Uuid::now_v7(), &new_session_id());
        let other_key =
            AccessTokens::new(&AuthConfig { jwt_secret: Secret::new("x".repeat(32)), ..AuthConfig::default() });
        assert_eq!(other_key.verify(token.as_bytes()), Err(TokenError::Invalid));
        let other_aud = AccessTokens::new(&AuthConfig {
            jwt_secret: Secret::new("k".repeat(32)),
            audience: "someone-else".into(),
            ..AuthConfig::default()
        });
        assert_eq!(other_aud.verify(token.as_bytes()), Err(TokenError::Invalid));
    }

    #[test]
    fn refresh_tokens_round_trip_and_never_parse_as_each_other() {
        let (user, sid) = (Uuid::now_v7(), new_session_id());
        let refresh = RefreshToken::generate(user, &sid);
        let parsed = RefreshToken::parse(&refresh.expose()).expect("parses");
        assert_eq!(parsed, refresh);
        assert_eq!(parsed.hash(), refresh.hash());
        assert_ne!(RefreshToken::generate(user, &sid).hash(), refresh.hash());
        assert!(RefreshToken::parse(&tokens().issue(user, &sid)).is_none(), "an access token is no refresh token");
        assert_eq!(tokens().verify(refresh.expose().as_bytes()), Err(TokenError::Invalid), "nor the reverse");
        assert!(RefreshToken::parse("rt1.x.y.z").is_none());
    }

    #[test]
    fn successors_are_deterministic_well_formed_and_keyed() {
        let cfg = AuthConfig { jwt_secret: Secret::new("k".repeat(32)), ..AuthConfig::default() };
        let key = RefreshKey::new(&cfg);
        let token = RefreshToken::generate(Uuid::now_v7(), &new_session_id());
        let next = token.successor(&key);
        assert_eq!(next, token.successor(&key));
        assert_ne!(next, token);
        assert_eq!(RefreshToken::parse(&next.expose()), Some(next.clone()), "a successor is a valid token");
        let other = RefreshKey::new(&AuthConfig { jwt_secret: Secret::new("x".repeat(32)), ..AuthConfig::default() });
        assert_ne!(token.successor(&other), next);
    }

    #[test]
    fn session_ids_carry_128_random_bits() {
        let (a, b) = (new_session_id(), new_session_id());
        assert!(is_session_id(&a) && is_session_id(&b));
        assert_ne!(a, b);
        assert!(!is_session_id("../../etc/passwd"));
    }
}
