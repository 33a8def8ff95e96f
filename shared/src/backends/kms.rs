//! The `KeyRing` port on AWS KMS: envelope encryption, and HMAC keys kept KMS-encrypted in the
//! store.
//!
//! - `seal`: KMS `GenerateDataKey` (AES-256) gives a data key and its wrapped form; the value is
//!   encrypted locally with AES-256-GCM ([`super::envelope`]) bound to the caller's associated
//!   data. `kek` is the KMS key's ARN as KMS reports it.
//! - `open`: KMS `Decrypt` of the wrapped key (results kept in a small bounded cache, zeroized on
//!   eviction and drop), then AES-256-GCM.
//! - HMAC: a [`HmacKeySet`] stored at `KEYRING`/`HMAC` as a KMS `Encrypt` blob under the
//!   encryption context `purpose=forcelink-hmac-keyset`, loaded at start ([`KmsKeyRing::load`]) so
//!   signing and verifying never leave memory. [`KeyRing::refresh_for`] reloads it when a token
//!   names an unknown key id or the copy is over five minutes old, at most once a minute
//!   ([`ReloadGate`]): keys rotated in or retired elsewhere reach warm Lambdas.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::types::DataKeySpec;
use aws_smithy_types::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use super::envelope::{self, HmacKeySet, ReloadGate, SecretKey};
use crate::ports::BackendError;
use crate::ports::keyring::{KeyError, KeyRing, Sealed, Signature};
use crate::ports::store::{Cond, Item, Store, StoreError};

/// Partition key of the HMAC keyset's record.
pub const KEYSET_PK: &str = "KEYRING";
/// Sort key of the HMAC keyset's record.
pub const KEYSET_SK: &str = "HMAC";
/// KMS encryption context of the HMAC keyset.
const KEYSET_CONTEXT: (&str, &str) = ("purpose", "forcelink-hmac-keyset");
/// KMS encryption context of data keys.
const DATA_KEY_CONTEXT: (&str, &str) = ("purpose", "forcelink-data-key");
/// How many unwrapped data keys `open` keeps.
const CACHE_CAPACITY: usize = 256;
/// Attempts at a keyset write that races with another writer.
const WRITE_ATTEMPTS: usize = 5;

/// A [`KeyRing`] on a KMS key (see the module docs).
pub struct KmsKeyRing {
    kms: Client,
    key_id: String,
    store: Arc<dyn Store>,
    hmac: RwLock<Arc<HmacKeySet>>,
    cache: Mutex<KeyCache>,
    gate: ReloadGate,
}

impl std::fmt::Debug for KmsKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsKeyRing").field("key_id", &self.key_id).field("hmac", &self.keyset()).finish_non_exhaustive()
    }
}

/// Unwrapped data keys by (KEK, wrapped bytes), oldest evicted first; keys are zeroized when
/// dropped.
struct KeyCache {
    keys: HashMap<Vec<u8>, SecretKey>,
    order: VecDeque<Vec<u8>>,
}

impl KeyCache {
    fn new() -> Self {
        Self { keys: HashMap::new(), order: VecDeque::new() }
    }

    /// The cache key: the KEK's name, a NUL, the wrapped bytes.
    fn slot(kek: &str, wrapped: &[u8]) -> Vec<u8> {
        let mut slot = Vec::with_capacity(kek.len() + 1 + wrapped.len());
        slot.extend_from_slice(kek.as_bytes());
        slot.push(0);
        slot.extend_from_slice(wrapped);
        slot
    }

    fn get(&self, kek: &str, wrapped: &[u8]) -> Option<SecretKey> {
        self.keys.get(&Self::slot(kek, wrapped)).cloned()
    }

    fn insert(&mut self, kek: &str, wrapped: &[u8], key: SecretKey) {
        let wrapped = Self::slot(kek, wrapped);
        if self.keys.contains_key(&wrapped) {
            return;
        }
        while self.order.len() >= CACHE_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        self.order.push_back(wrapped.clone());
        self.keys.insert(wrapped, key);
    }
}

/// The stored keyset record's body.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeysetRecord {
    /// The KMS key that encrypted `blob`.
    kms_key_id: String,
    /// Base64 of KMS's ciphertext blob of the keyset JSON.
    blob: String,
}

fn kms_err<E, R>(e: SdkError<E, R>, kek: &str) -> KeyError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.code() {
        Some("InvalidCiphertextException") => KeyError::Decrypt,
        Some("NotFoundException" | "IncorrectKeyException") => KeyError::UnknownKek(kek.to_string()),
        _ => KeyError::Backend(BackendError::new("KMS", e)),
    }
}

fn store_err(e: StoreError) -> KeyError {
    KeyError::Backend(BackendError::new("keyset record", e))
}

impl KmsKeyRing {
    /// Opens the key ring on the KMS key `key_id` (an id, ARN or alias), loading the HMAC keyset
    /// from `store`, or creating and storing it on first use (if another process creates it at
    /// the same time, its keyset wins and is read back).
    pub async fn load(kms: Client, key_id: String, store: Arc<dyn Store>) -> Result<Self, KeyError> {
        let mut ring = Self {
            kms,
            key_id,
            store,
            hmac: RwLock::new(Arc::new(HmacKeySet::generate())),
            cache: Mutex::new(KeyCache::new()),
            gate: ReloadGate::new(ReloadGate::EVERY, ReloadGate::MAX_AGE),
        };
        for _ in 0..WRITE_ATTEMPTS {
            if let Some(item) = ring.store.get(KEYSET_PK, KEYSET_SK).await.map_err(store_err)? {
                let set = ring.decrypt_keyset(&item).await?;
                ring.hmac = RwLock::new(Arc::new(set));
                return Ok(ring);
            }
            let set = HmacKeySet::generate();
            let body = ring.encrypt_keyset(&set).await?;
            match ring.store.put(Item::new(KEYSET_PK, KEYSET_SK, body), Cond::NotExists).await {
                Ok(_) => {
                    tracing::info!(kid = set.current_kid(), "created the HMAC keyset");
                    ring.hmac = RwLock::new(Arc::new(set));
                    return Ok(ring);
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(KeyError::Backend(BackendError::msg("the HMAC keyset record keeps changing; giving up")))
    }

    /// Sets how often the HMAC keyset may be reloaded and its maximum age (default: once a
    /// minute, five minutes).
    pub fn with_reload(mut self, every: std::time::Duration, max_age: std::time::Duration) -> Self {
        self.gate = ReloadGate::new(every, max_age);
        self
    }

    /// Adds a new current HMAC key, keeping the old ones for verifying, and stores the keyset
    /// (a conditional write on the record's version, retried on a race). Returns the new key id.
    /// Other processes see it on their next reload ([`KeyRing::refresh_for`]).
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let kid = self.update_keyset(|set| Ok(set.rotate().to_string())).await?;
        tracing::info!(kid = %kid, "rotated the HMAC keyset");
        Ok(kid)
    }

    /// Retires the HMAC key `kid` (see [`HmacKeySet::retire`]): it stops verifying here at once
    /// and in other processes on their next reload. `Ok(false)` if it already was retired.
    pub async fn retire(&self, kid: &str) -> Result<bool, KeyError> {
        let done = self.update_keyset(|set| set.retire(kid)).await?;
        tracing::info!(kid = %kid, "retired an HMAC key");
        Ok(done)
    }

    /// Applies `change` to the stored keyset with a conditional write (retried on a race) and
    /// keeps the result as this ring's keyset.
    async fn update_keyset<T>(&self, change: impl Fn(&mut HmacKeySet) -> Result<T, KeyError>) -> Result<T, KeyError> {
        for _ in 0..WRITE_ATTEMPTS {
            let item = self.store.get(KEYSET_PK, KEYSET_SK).await.map_err(store_err)?;
            let (mut set, cond) = match &item {
                Some(item) => (self.decrypt_keyset(item).await?, Cond::Version(item.version)),
                None => (HmacKeySet::generate(), Cond::NotExists),
            };
            let out = change(&mut set)?;
            let body = self.encrypt_keyset(&set).await?;
            match self.store.put(Item::new(KEYSET_PK, KEYSET_SK, body), cond).await {
                Ok(_) => {
                    *self.hmac.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                    self.gate.loaded_now();
                    return Ok(out);
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(KeyError::Backend(BackendError::msg("the HMAC keyset record keeps changing; giving up")))
    }

    /// Re-reads the HMAC keyset from the store (to pick up another process's rotation).
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let item = self
            .store
            .get(KEYSET_PK, KEYSET_SK)
            .await
            .map_err(store_err)?
            .ok_or_else(|| KeyError::Backend(BackendError::msg("the HMAC keyset record is gone")))?;
        let set = self.decrypt_keyset(&item).await?;
        *self.hmac.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        self.gate.loaded_now();
        Ok(())
    }

    /// The KMS key this ring seals under, as given.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The current HMAC keyset.
    pub fn keyset(&self) -> Arc<HmacKeySet> {
        self.hmac.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn encrypt_keyset(&self, set: &HmacKeySet) -> Result<String, KeyError> {
        let json = set.to_json();
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(json.to_vec()))
            .encryption_context(KEYSET_CONTEXT.0, KEYSET_CONTEXT.1)
            .send()
            .await
            .map_err(|e| kms_err(e, &self.key_id))?;
        let blob = out.ciphertext_blob().ok_or_else(|| KeyError::Backend(BackendError::msg("KMS Encrypt returned no ciphertext")))?;
        let record = KeysetRecord { kms_key_id: out.key_id().unwrap_or(&self.key_id).to_string(), blob: B64.encode(blob.as_ref()) };
        serde_json::to_string(&record).map_err(|e| KeyError::Backend(BackendError::new("keyset record encoding", e)))
    }

    async fn decrypt_keyset(&self, item: &Item) -> Result<HmacKeySet, KeyError> {
        let record: KeysetRecord = serde_json::from_str(&item.body).map_err(|_| KeyError::Malformed)?;
        let blob = B64.decode(&record.blob).map_err(|_| KeyError::Malformed)?;
        let out = self
            .kms
            .decrypt()
            .key_id(&record.kms_key_id)
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(KEYSET_CONTEXT.0, KEYSET_CONTEXT.1)
            .send()
            .await
            .map_err(|e| kms_err(e, &record.kms_key_id))?;
        if out.key_id().is_some_and(|k| k != record.kms_key_id) {
            return Err(KeyError::UnknownKek(record.kms_key_id));
        }
        let plain = out.plaintext().ok_or_else(|| KeyError::Backend(BackendError::msg("KMS Decrypt returned no plaintext")))?;
        let json = Zeroizing::new(plain.as_ref().to_vec());
        HmacKeySet::from_json(&json)
    }

    async fn unwrap_data_key(&self, sealed: &Sealed) -> Result<SecretKey, KeyError> {
        if let Some(key) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&sealed.kek, &sealed.wrapped_key) {
            return Ok(key);
        }
        let out = self
            .kms
            .decrypt()
            .key_id(&sealed.kek)
            .ciphertext_blob(Blob::new(sealed.wrapped_key.clone()))
            .encryption_context(DATA_KEY_CONTEXT.0, DATA_KEY_CONTEXT.1)
            .send()
            .await
            .map_err(|e| kms_err(e, &sealed.kek))?;
        // KMS refuses a KeyId that did not wrap the blob; check the answer too (emulators do not).
        if out.key_id().is_some_and(|k| k != sealed.kek) {
            return Err(KeyError::UnknownKek(sealed.kek.clone()));
        }
        let plain = out.plaintext().ok_or_else(|| KeyError::Backend(BackendError::msg("KMS Decrypt returned no plaintext")))?;
        let key = envelope::key_from_slice(plain.as_ref()).map_err(|_| KeyError::Decrypt)?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(&sealed.kek, &sealed.wrapped_key, key.clone());
        Ok(key)
    }
}

#[async_trait]
impl KeyRing for KmsKeyRing {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, KeyError> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(DATA_KEY_CONTEXT.0, DATA_KEY_CONTEXT.1)
            .send()
            .await
            .map_err(|e| kms_err(e, &self.key_id))?;
        let plain = out.plaintext().ok_or_else(|| KeyError::Backend(BackendError::msg("KMS GenerateDataKey returned no plaintext")))?;
        let data_key = envelope::key_from_slice(plain.as_ref())
            .map_err(|_| KeyError::Backend(BackendError::msg("KMS returned a data key of the wrong size")))?;
        let wrapped = out
            .ciphertext_blob()
            .ok_or_else(|| KeyError::Backend(BackendError::msg("KMS GenerateDataKey returned no ciphertext")))?
            .as_ref()
            .to_vec();
        let kek = out.key_id().unwrap_or(&self.key_id).to_string();
        let sealed = envelope::seal_envelope(kek, wrapped, &data_key, plaintext, aad)?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(&sealed.kek, &sealed.wrapped_key, data_key);
        Ok(sealed)
    }

    async fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let data_key = self.unwrap_data_key(sealed).await?;
        envelope::open_envelope(&data_key, sealed, aad)
    }

    fn sign(&self, msg: &[u8]) -> Signature {
        self.hmac.read().unwrap_or_else(|e| e.into_inner()).sign(msg)
    }

    fn verify(&self, kid: &str, msg: &[u8], tag: &[u8]) -> bool {
        self.hmac.read().unwrap_or_else(|e| e.into_inner()).verify(kid, msg, tag)
    }

    fn sign_with(&self, kid: &str, msg: &[u8]) -> Option<Signature> {
        self.hmac.read().unwrap_or_else(|e| e.into_inner()).sign_with(kid, msg)
    }

    fn signing_kids(&self) -> Vec<String> {
        self.keyset().live_kids()
    }

    fn has_key(&self, kid: &str) -> bool {
        self.hmac.read().unwrap_or_else(|e| e.into_inner()).has_kid(kid)
    }

    async fn refresh_for(&self, kid: &str) -> bool {
        if self.keyset().is_retired(kid) && !self.gate.is_stale() {
            return false;
        }
        self.gate.reload_unless(|| self.has_key(kid), || self.refresh()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded() {
        let mut cache = KeyCache::new();
        for i in 0..(CACHE_CAPACITY + 10) {
            cache.insert("k", &(i as u32).to_be_bytes(), envelope::random_key());
        }
        assert_eq!(cache.keys.len(), CACHE_CAPACITY);
        assert!(cache.get("k", &0u32.to_be_bytes()).is_none());
        let last = ((CACHE_CAPACITY + 9) as u32).to_be_bytes();
        assert!(cache.get("k", &last).is_some());
        assert!(cache.get("other", &last).is_none(), "the KEK is part of the key");
    }
}
