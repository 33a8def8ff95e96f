//! The local `KeyRing`: a key file, created owner-only (0600) on first run, holding the
//! key-encryption key that wraps data keys and the HMAC key set.
//!
//! File format (JSON): `{"kek_id": "...", "kek": "<base64url 32 bytes>", "hmac": {key set}}`.
//! Rotation and retirement rewrite the file atomically (temporary file, then rename); a running
//! ring re-reads the HMAC keys when a token names an unknown key id or its copy is old
//! ([`KeyRing::refresh_for`], at most once a minute), so `forcelink dev` follows the admin verbs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use zeroize::Zeroizing;

use crate::backends::envelope::{self, HmacKeySet, ReloadGate, SecretKey};
use crate::ports::BackendError;
use crate::ports::keyring::{KeyError, KeyRing, Sealed, Signature};

/// Keys from a local file.
pub struct LocalKeyRing {
    path: PathBuf,
    kek_id: String,
    kek: SecretKey,
    hmac: RwLock<Arc<HmacKeySet>>,
    gate: ReloadGate,
}

/// What the key file holds.
struct KeyFile {
    kek_id: String,
    kek: SecretKey,
    hmac: HmacKeySet,
}

#[derive(serde::Deserialize)]
struct RawFile {
    kek_id: String,
    kek: String,
    hmac: serde_json::Value,
}

fn io(path: &Path, e: std::io::Error) -> KeyError {
    KeyError::Backend(BackendError::new(format!("key file {}", path.display()), e))
}

impl LocalKeyRing {
    /// Opens the key file, creating it (0600) with fresh keys if it does not exist.
    pub fn open(path: &Path) -> Result<Self, KeyError> {
        let file = KeyFile::open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            kek_id: file.kek_id,
            kek: file.kek,
            hmac: RwLock::new(Arc::new(file.hmac)),
            gate: ReloadGate::new(ReloadGate::EVERY, ReloadGate::MAX_AGE),
        })
    }

    /// Sets how often the HMAC keys may be re-read and their maximum age (default: once a
    /// minute, five minutes).
    pub fn with_reload(mut self, every: Duration, max_age: Duration) -> Self {
        self.gate = ReloadGate::new(every, max_age);
        self
    }

    /// Adds a new current HMAC key to the file; old keys keep verifying. Returns the new key id.
    pub fn rotate(path: &Path) -> Result<String, KeyError> {
        let mut file = KeyFile::open(path)?;
        let kid = file.hmac.rotate().to_string();
        file.write(path, false)?;
        Ok(kid)
    }

    /// Retires the HMAC key `kid` in the file (see [`HmacKeySet::retire`]). `Ok(false)` if it
    /// already was retired.
    pub fn retire(path: &Path, kid: &str) -> Result<bool, KeyError> {
        let mut file = KeyFile::open(path)?;
        let done = file.hmac.retire(kid)?;
        if done {
            file.write(path, false)?;
        }
        Ok(done)
    }

    /// Re-reads the HMAC keys from the file.
    pub fn refresh(&self) -> Result<(), KeyError> {
        let bytes = Zeroizing::new(std::fs::read(&self.path).map_err(|e| io(&self.path, e))?);
        let file = KeyFile::parse(&bytes)?;
        *self.hmac.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(file.hmac);
        self.gate.loaded_now();
        Ok(())
    }

    /// The HMAC key ids, the current one first.
    pub fn kids(&self) -> Vec<String> {
        let set = self.keyset();
        let mut kids = vec![set.current_kid().to_string()];
        kids.extend(set.kids().filter(|k| *k != set.current_kid()).map(str::to_string));
        kids
    }

    /// The current HMAC key set.
    pub fn keyset(&self) -> Arc<HmacKeySet> {
        self.hmac.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl KeyFile {
    /// Reads the key file, creating it (0600) with fresh keys if it does not exist.
    fn open(path: &Path) -> Result<Self, KeyError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(&Zeroizing::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file =
                    Self { kek_id: format!("local:{}", envelope::new_kid()), kek: envelope::random_key(), hmac: HmacKeySet::generate() };
                match file.write(path, true) {
                    Ok(()) => Ok(file),
                    // Another process created it first: use theirs.
                    Err(_) if path.exists() => Self::open(path),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(io(path, e)),
        }
    }

    fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        let raw: RawFile = serde_json::from_slice(bytes).map_err(|_| KeyError::Malformed)?;
        let kek = envelope::key_from_slice(&Zeroizing::new(B64.decode(raw.kek.as_bytes()).map_err(|_| KeyError::Malformed)?))?;
        let hmac_json = Zeroizing::new(serde_json::to_vec(&raw.hmac).map_err(|_| KeyError::Malformed)?);
        Ok(Self { kek_id: raw.kek_id, kek, hmac: HmacKeySet::from_json(&hmac_json)? })
    }

    fn write(&self, path: &Path, create_new: bool) -> Result<(), KeyError> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(path, e))?;
        }
        let mut body = Zeroizing::new(Vec::with_capacity(512));
        body.extend_from_slice(b"{\"kek_id\":");
        body.extend_from_slice(serde_json::to_string(&self.kek_id).map_err(|_| KeyError::Malformed)?.as_bytes());
        body.extend_from_slice(b",\"kek\":\"");
        body.extend_from_slice(Zeroizing::new(B64.encode(self.kek.as_ref())).as_bytes());
        body.extend_from_slice(b"\",\"hmac\":");
        body.extend_from_slice(&self.hmac.to_json());
        body.extend_from_slice(b"}\n");
        let target: PathBuf = if create_new { path.to_path_buf() } else { path.with_extension("tmp") };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).mode(0o600);
        if create_new {
            options.create_new(true);
        } else {
            options.create(true).truncate(true);
        }
        let mut file = options.open(&target).map_err(|e| io(path, e))?;
        file.write_all(&body).and_then(|()| file.sync_all()).map_err(|e| io(path, e))?;
        if !create_new {
            std::fs::rename(&target, path).map_err(|e| io(path, e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl KeyRing for LocalKeyRing {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, KeyError> {
        let data_key = envelope::random_key();
        let wrapped = envelope::wrap_key(&self.kek, &data_key, self.kek_id.as_bytes())?;
        envelope::seal_envelope(self.kek_id.clone(), wrapped, &data_key, plaintext, aad)
    }

    async fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed.kek != self.kek_id {
            return Err(KeyError::UnknownKek(sealed.kek.clone()));
        }
        let data_key = envelope::unwrap_key(&self.kek, &sealed.wrapped_key, self.kek_id.as_bytes())?;
        envelope::open_envelope(&data_key, sealed, aad)
    }

    fn sign(&self, msg: &[u8]) -> Signature {
        self.keyset().sign(msg)
    }

    fn verify(&self, kid: &str, msg: &[u8], tag: &[u8]) -> bool {
        self.keyset().verify(kid, msg, tag)
    }

    fn sign_with(&self, kid: &str, msg: &[u8]) -> Option<Signature> {
        self.hmac.read().unwrap_or_else(|e| e.into_inner()).sign_with(kid, msg)
    }

    fn signing_kids(&self) -> Vec<String> {
        self.keyset().live_kids()
    }

    fn has_key(&self, kid: &str) -> bool {
        self.keyset().has_kid(kid)
    }

    async fn refresh_for(&self, kid: &str) -> bool {
        if self.keyset().is_retired(kid) && !self.gate.is_stale() {
            return false;
        }
        self.gate.reload_unless(|| self.has_key(kid), || async { self.refresh() }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn creates_an_owner_only_file_and_reopens_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let ring = LocalKeyRing::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = ring.seal(b"token", b"aad").await.unwrap();
        let again = LocalKeyRing::open(&path).unwrap();
        assert_eq!(&*again.open(&sealed, b"aad").await.unwrap(), b"token");
        let sig = ring.sign(b"m");
        assert!(again.verify(&sig.kid, b"m", &sig.tag));
    }

    #[tokio::test]
    async fn rotation_keeps_old_signatures_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let old = LocalKeyRing::open(&path).unwrap().sign(b"m");
        let kid = LocalKeyRing::rotate(&path).unwrap();
        let ring = LocalKeyRing::open(&path).unwrap();
        assert_eq!(ring.kids()[0], kid);
        assert!(ring.verify(&old.kid, b"m", &old.tag));
        assert_eq!(ring.sign(b"m").kid, kid);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
