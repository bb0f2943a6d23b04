//! Sessions encrypted at rest: AES-256-GCM with a random 96-bit nonce per write, the session id
//! as associated data (a blob copied under another session id does not decrypt), and the key id
//! in the blob so keys can rotate while old sessions still decrypt.
//!
//! Blob layout: `version (1) | key id (4) | nonce (12) | ciphertext + tag (16)`.

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use app_core::config::Secret;
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 12;

/// Why a blob could not be opened. Deliberately uninformative: tampering and a retired key
/// look the same to the caller (a 401).
#[derive(Debug, thiserror::Error)]
#[error("the session blob cannot be decrypted")]
pub struct Undecryptable;

struct Key {
    id: [u8; 4],
    cipher: Aes256Gcm,
}

impl Key {
    /// Derives the AES key from configured key material (>= 32 bytes of entropy, any encoding)
    /// with SHA-256 under a domain label, and the key id from the derived key.
    fn derive(secret: &Secret) -> Key {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"spa-backend session encryption v1\0")
            .chain_update(secret.expose().as_bytes())
            .finalize()
            .into();
        let digest = Sha256::new().chain_update(b"key id\0").chain_update(key).finalize();
        let id = [digest[0], digest[1], digest[2], digest[3]];
        let cipher = Aes256Gcm::new_from_slice(&key).expect("a 32-byte key is valid for AES-256");
        Key { id, cipher }
    }
}

/// Seals and opens session blobs.
pub struct SessionCipher {
    current: Key,
    previous: Vec<Key>,
}

impl SessionCipher {
    /// A cipher writing with `current` and also reading what `previous` keys wrote.
    pub fn new(current: &Secret, previous: &[Secret]) -> Self {
        Self { current: Key::derive(current), previous: previous.iter().map(Key::derive).collect() }
    }

    /// Encrypts `plaintext` for session `sid` under the current key.
    pub fn seal(&self, sid: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce);
        let sealed = self
            .current
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: sid.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = Vec::with_capacity(HEADER + sealed.len());
        blob.push(VERSION);
        blob.extend_from_slice(&self.current.id);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        blob
    }

    /// Decrypts a blob written for session `sid` by the current or a previous key.
    pub fn open(&self, sid: &str, blob: &[u8]) -> Result<Vec<u8>, Undecryptable> {
        if blob.len() < HEADER + 16 || blob[0] != VERSION {
            return Err(Undecryptable);
        }
        let (id, nonce, sealed) = (&blob[1..5], &blob[5..HEADER], &blob[HEADER..]);
        let key = std::iter::once(&self.current).chain(&self.previous).find(|k| k.id == id).ok_or(Undecryptable)?;
        let nonce = Nonce::try_from(nonce).map_err(|_| Undecryptable)?;
        key.cipher.decrypt(&nonce, Payload { msg: sealed, aad: sid.as_bytes() }).map_err(|_| Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.repeat(32))
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let cipher = SessionCipher::new(&secret("a"), &[]);
        let (one, two) = (cipher.seal("sid", b"hello"), cipher.seal("sid", b"hello"));
        assert_ne!(one, two, "a random nonce per write");
        assert_eq!(cipher.open("sid", &one).expect("opens"), b"hello");
    }

    #[test]
    fn a_blob_does_not_open_under_another_session_id() {
        let cipher = SessionCipher::new(&secret("a"), &[]);
        let blob = cipher.seal("sid-1", b"hello");
        assert!(cipher.open("sid-2", &blob).is_err());
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let cipher = SessionCipher::new(&secret("a"), &[]);
        let blob = cipher.seal("sid", b"hello");
        for i in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x01;
            assert!(cipher.open("sid", &tampered).is_err(), "byte {i}");
        }
        assert!(cipher.open("sid", &blob[..10]).is_err(), "truncated");
    }

    #[test]
    fn previous_keys_still_decrypt_after_a_rotation() {
        let old = SessionCipher::new(&secret("a"), &[]);
        let blob = old.seal("sid", b"hello");
        let rotated = SessionCipher::new(&secret("b"), &[secret("a")]);
        assert_eq!(rotated.open("sid", &blob).expect("old key still reads"), b"hello");
        let fresh = rotated.seal("sid", b"hello");
        assert!(old.open("sid", &fresh).is_err(), "new writes use the new key");
        let retired = SessionCipher::new(&secret("b"), &[]);
        assert!(retired.open("sid", &blob).is_err(), "a retired key no longer reads");
    }
}
