//! The `KeyRing` port: envelope encryption for secrets at rest, and HMAC keys with key ids.
//!
//! Sealing generates a fresh AES-256-GCM data key, encrypts with it, and wraps the data key
//! with a key-encryption key (KMS on AWS, a local key file in dev). Signing uses the current
//! HMAC-SHA256 key and names it by id, so older keys keep verifying after a rotation, until
//! they are retired. Verifiers call [`KeyRing::refresh_for`] first so a warm process picks up
//! keys added or retired since it started.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use zeroize::Zeroizing;

/// An encrypted value: the wrapped data key and the AES-256-GCM ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which key-encryption key wrapped the data key.
    pub kek: String,
    pub wrapped_key: Vec<u8>,
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// The compact text form `v1.<kek>.<wrapped>.<nonce>.<ciphertext>` (base64url parts).
    pub fn encode(&self) -> String {
        format!(
            "v1.{}.{}.{}.{}",
            B64.encode(self.kek.as_bytes()),
            B64.encode(&self.wrapped_key),
            B64.encode(self.nonce),
            B64.encode(&self.ciphertext)
        )
    }

    /// Parses the compact text form.
    pub fn decode(text: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::Malformed;
        let mut parts = text.split('.');
        if parts.next() != Some("v1") {
            return Err(bad());
        }
        let mut next = || parts.next().ok_or_else(bad).and_then(|p| B64.decode(p).map_err(|_| bad()));
        let kek = String::from_utf8(next()?).map_err(|_| bad())?;
        let wrapped_key = next()?;
        let nonce: [u8; 12] = next()?.try_into().map_err(|_| bad())?;
        let ciphertext = next()?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self { kek, wrapped_key, nonce, ciphertext })
    }
}

/// An HMAC-SHA256 tag with the id of the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub kid: String,
    pub tag: [u8; 32],
}

/// Key failures. None of them carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("sealed value is malformed")]
    Malformed,
    /// Wrong key, tampered ciphertext or associated data.
    #[error("sealed value does not decrypt")]
    Decrypt,
    #[error("unknown key-encryption key {0}")]
    UnknownKek(String),
    #[error("key backend: {0}")]
    Backend(#[from] super::BackendError),
    /// The current signing key cannot be retired (rotate first).
    #[error("key {0} is the current signing key: rotate first")]
    CurrentKey(String),
    /// No signing key with this id (nor a retired one).
    #[error("no signing key {0}")]
    UnknownKid(String),
}

/// Encryption and signing keys.
#[async_trait]
pub trait KeyRing: Send + Sync {
    /// Encrypts `plaintext` bound to `aad` under a fresh data key.
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, KeyError>;
    /// Decrypts a sealed value made with the same `aad`.
    async fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// Signs with the current HMAC key.
    fn sign(&self, msg: &[u8]) -> Signature;
    /// Signs with the HMAC key `kid` (current or older, not retired), for keys derived per
    /// signing key (the login tokens' Ed25519 keys). `None` for an unknown key.
    fn sign_with(&self, kid: &str, msg: &[u8]) -> Option<Signature> {
        let sig = self.sign(msg);
        (sig.kid == kid).then_some(sig)
    }
    /// The ids of every HMAC key that verifies (the current one first).
    fn signing_kids(&self) -> Vec<String> {
        vec![self.sign(b"").kid]
    }
    /// Checks a tag in constant time against the named key; false for an unknown key id.
    fn verify(&self, kid: &str, msg: &[u8], tag: &[u8]) -> bool;
    /// Whether a signing key with this id is known (so a refused tag can be told apart from
    /// an unknown key). Key rings that cannot tell answer `true`.
    fn has_key(&self, _kid: &str) -> bool {
        true
    }
    /// Call before verifying a tag under `kid`: a ring whose keys live elsewhere reloads them
    /// when `kid` is unknown or its copy is old (rate-limited, one reload at a time), so keys
    /// added or retired after this process started take effect. True if `kid` can verify
    /// afterwards. The default reloads nothing.
    async fn refresh_for(&self, kid: &str) -> bool {
        self.has_key(kid)
    }
}
