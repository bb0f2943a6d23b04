//! Password hashing: argon2id with OWASP's parameters (19 MiB, t=2, p=1).
//!
//! Hashing and verifying take tens of milliseconds of CPU each, so they run on the blocking
//! pool, never on the async workers. Login for an unknown email verifies against a dummy hash
//! made with the same parameters, so it costs the same time as a wrong password.

use std::sync::{Arc, LazyLock};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password, verified when the email is unknown.
static DUMMY: LazyLock<Arc<str>> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    rand::fill(&mut random);
    Arc::from(hash_now(&random).as_str())
});

fn hash_now(password: &[u8]) -> String {
    argon2().hash_password(password).expect("argon2id hashing with valid parameters").to_string()
}

fn verify_now(password: &[u8], hash: &str) -> bool {
    argon2().verify_password(password, hash).is_ok()
}

/// Hashes a password (on the blocking pool) to a PHC string.
pub async fn hash(password: String) -> String {
    tokio::task::spawn_blocking(move || hash_now(password.as_bytes())).await.expect("the hashing task does not panic")
}

/// Verifies a password against a PHC string (on the blocking pool); with `None` (unknown user)
/// it verifies against the dummy hash and answers `false`, taking the same time.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_now(password.as_bytes(), &hash),
        None => {
            let _ = verify_now(password.as_bytes(), &DUMMY);
            false
        }
    })
    .await
    .expect("the verifying task does not panic")
}

/// Computes the dummy hash ahead of the first login (start-up), so that login does not pay
/// for it.
pub fn warm_up() {
    LazyLock::force(&DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_argon2id_and_owasp_parameters() {
        let phc = hash("correct horse".into()).await;
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse".into(), Some(phc.clone())).await);
        assert!(!verify("correct horsE".into(), Some(phc)).await, "compared exactly as received");
        assert!(!verify("anything".into(), None).await);
    }
}
