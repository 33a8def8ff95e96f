//! The `KeyRing` contract against both backends: the local key file and KMS (on moto, with the
//! HMAC keyset in DynamoDB on moto).

#[path = "contract/keyring.rs"]
mod keyring;
#[path = "contract/support.rs"]
mod support;

use std::sync::Arc;

use forcelink::backends::kms::{KEYSET_PK, KEYSET_SK, KmsKeyRing};
use forcelink::backends::local_keyring::LocalKeyRing;
use forcelink::ports::keyring::{KeyError, KeyRing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_keyring_meets_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys.json");
    let ring: Arc<dyn KeyRing> = Arc::new(LocalKeyRing::open(&path).expect("create the key file"));
    let rotate = async || LocalKeyRing::rotate(&path).expect("rotate");
    let reopen = async || Arc::new(LocalKeyRing::open(&path).expect("reopen the key file")) as Arc<dyn KeyRing>;
    keyring::keyring_contract(ring, rotate, reopen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_keyring_meets_the_contract() {
    let (kms, key_id, store) = support::kms_setup().await;
    let ring = Arc::new(KmsKeyRing::load(kms.clone(), key_id.clone(), store.clone()).await.expect("load (creates the keyset)"));
    let rotating = ring.clone();
    let rotate = async move || rotating.rotate().await.expect("rotate");
    let reopen =
        async || Arc::new(KmsKeyRing::load(kms.clone(), key_id.clone(), store.clone()).await.expect("load again")) as Arc<dyn KeyRing>;
    keyring::keyring_contract(ring, rotate, reopen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_keyring_loads_agree_and_store_no_plaintext_keys() {
    let (kms, key_id, store) = support::kms_setup().await;
    // Cold starts racing to create the keyset end up with the same one.
    let loads = (0..4).map(|_| KmsKeyRing::load(kms.clone(), key_id.clone(), store.clone()));
    let rings: Vec<KmsKeyRing> = futures::future::join_all(loads).await.into_iter().map(|r| r.expect("load")).collect();
    let sig = rings[0].sign(b"m");
    for ring in &rings {
        assert_eq!(ring.sign(b"m"), sig, "every racing load got the same keyset");
    }

    // The record holds only KMS ciphertext.
    let record = store.get(KEYSET_PK, KEYSET_SK).await.expect("get").expect("the keyset record");
    let body: serde_json::Value = serde_json::from_str(&record.body).expect("JSON body");
    assert!(body.get("blob").and_then(|b| b.as_str()).is_some_and(|b| !b.is_empty()));
    assert!(!record.body.contains(&sig.kid), "the key ids (and keys) are inside the encrypted blob");

    // A rotation by one process reaches another on refresh.
    let kid = rings[1].rotate().await.expect("rotate");
    assert_ne!(rings[0].sign(b"m").kid, kid, "not seen before a refresh");
    rings[0].refresh().await.expect("refresh");
    assert_eq!(rings[0].sign(b"m").kid, kid);
    assert!(rings[0].verify(&sig.kid, b"m", &sig.tag));

    // A sealed value opens in another process (no shared cache).
    let sealed = rings[2].seal(b"tok", b"aad").await.expect("seal");
    assert_eq!(rings[3].open(&sealed, b"aad").await.expect("open").as_slice(), b"tok");

    // A sealed value naming a KMS key that does not exist.
    let bogus = forcelink::ports::keyring::Sealed {
        kek: "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000".into(),
        ..sealed
    };
    let result = rings[3].open(&bogus, b"aad").await;
    assert!(matches!(result, Err(KeyError::UnknownKek(_))), "an unknown key-encryption key: {:?}", result.map(|_| "plaintext"));
}
