//! Keys on warm processes, on both key rings (the local key file; KMS on moto with the keyset
//! in DynamoDB on moto): a token signed by a key added after a ring loaded verifies after one
//! rate-limited reload, and a retired key stops verifying here and, after their reload, in
//! other processes.

#[path = "contract/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use forcelink::backends::kms::KmsKeyRing;
use forcelink::backends::local_keyring::LocalKeyRing;
use forcelink::links::{self, LinkClaims, LinkError};
use forcelink::ports::keyring::{KeyError, KeyRing};

const FAR: i64 = 4_000_000_000;
/// Long enough that a test never waits it out by accident.
const SLOW: Duration = Duration::from_secs(3600);
/// Short enough to wait out.
const QUICK: Duration = Duration::from_millis(300);

fn token(ring: &dyn KeyRing) -> String {
    links::mint(ring, &LinkClaims::new("acme", "u1", "/q/1", FAR, false))
}

/// A key added elsewhere: unknown until one reload; a second reload within the interval is
/// refused (even for another unknown key id), and allowed once it passed.
async fn added_keys_arrive_after_one_reload(warm: &dyn KeyRing, mut rotate: impl AsyncFnMut() -> (String, Arc<dyn KeyRing>)) {
    let (kid, fresh) = rotate().await;
    let new_token = token(fresh.as_ref());
    assert_eq!(fresh.sign(b"x").kid, kid);
    assert!(!warm.has_key(&kid), "not seen before a reload");
    assert_eq!(links::verify(warm, &new_token, 0), Err(LinkError::UnknownKey), "the sync check does not reload");
    assert!(links::verify_link_fresh(warm, &new_token, 0).await.is_ok(), "one reload picks the new key up");
    assert!(warm.has_key(&kid));

    // Rate limit: random key ids cannot make the ring reload again within the interval.
    assert!(!warm.refresh_for("attacker-kid").await);
    let (later, fresh) = rotate().await;
    let later_token = token(fresh.as_ref());
    assert_eq!(links::verify_link_fresh(warm, &later_token, 0).await.map(|_| ()), Err(LinkError::UnknownKey), "rate-limited");
    assert!(!warm.has_key(&later));
}

/// Retiring: the retiring process stops at once, others after their reload; the current key
/// cannot be retired; an unknown one is an error; retiring twice is harmless.
async fn retired_keys_stop_verifying(
    warm: &dyn KeyRing,
    old_token: &str,
    old_kid: &str,
    mut retire: impl AsyncFnMut(&str) -> Result<bool, KeyError>,
    current: &str,
) {
    assert!(links::verify_link_fresh(warm, old_token, 0).await.is_ok(), "the old key verifies before it is retired");
    assert!(retire(old_kid).await.expect("retire"));
    assert!(!retire(old_kid).await.expect("retire again"), "already retired");
    assert!(matches!(retire(current).await, Err(KeyError::CurrentKey(_))), "the current key cannot be retired");
    assert!(matches!(retire("no-such-kid").await, Err(KeyError::UnknownKid(_))));
    tokio::time::sleep(QUICK + Duration::from_millis(50)).await;
    assert_eq!(links::verify_link_fresh(warm, old_token, 0).await.map(|_| ()), Err(LinkError::UnknownKey), "retired after a reload");
    assert!(!warm.has_key(old_kid));
    assert!(!warm.refresh_for(old_kid).await, "a retired key id does not bring it back");
}

#[tokio::test]
async fn local_ring_reloads_added_keys_and_drops_retired_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys.json");
    let warm = LocalKeyRing::open(&path).expect("create").with_reload(SLOW, SLOW);
    let first = warm.sign(b"x").kid;
    let old_token = token(&warm);
    let rotate = async || {
        let kid = LocalKeyRing::rotate(&path).expect("rotate");
        (kid, Arc::new(LocalKeyRing::open(&path).expect("open")) as Arc<dyn KeyRing>)
    };
    added_keys_arrive_after_one_reload(&warm, rotate).await;

    let warm = LocalKeyRing::open(&path).expect("open").with_reload(QUICK, QUICK);
    let current = warm.sign(b"x").kid;
    let retire = async |kid: &str| LocalKeyRing::retire(&path, kid);
    retired_keys_stop_verifying(&warm, &old_token, &first, retire, &current).await;

    // The file remembers the id without its key; a new process refuses it too.
    let text = std::fs::read_to_string(&path).expect("read");
    let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(file["hmac"]["retired"], serde_json::json!([first]));
    assert!(file["hmac"]["keys"].get(&first).is_none(), "the retired key's material is gone");
    let cold = LocalKeyRing::open(&path).expect("open");
    assert_eq!(links::verify_link_fresh(&cold, &old_token, 0).await.map(|_| ()), Err(LinkError::UnknownKey));
    assert!(cold.keyset().is_retired(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_ring_reloads_added_keys_and_drops_retired_ones() {
    let (kms, key_id, store) = support::kms_setup().await;
    let load = async || KmsKeyRing::load(kms.clone(), key_id.clone(), store.clone()).await.expect("load");
    let warm = load().await.with_reload(SLOW, SLOW);
    let first = warm.sign(b"x").kid;
    let old_token = token(&warm);
    let admin = Arc::new(load().await);
    let rotating = admin.clone();
    let rotate = async move || {
        let kid = rotating.rotate().await.expect("rotate");
        (kid, rotating.clone() as Arc<dyn KeyRing>)
    };
    added_keys_arrive_after_one_reload(&warm, rotate).await;

    // Concurrent requests naming a new key share one reload and all verify.
    let warm = Arc::new(load().await.with_reload(SLOW, SLOW));
    let kid = admin.rotate().await.expect("rotate");
    let new_token = token(admin.as_ref());
    let checks = (0..8).map(|_| {
        let (warm, new_token) = (warm.clone(), new_token.clone());
        tokio::spawn(async move { links::verify_link_fresh(warm.as_ref(), &new_token, 0).await.is_ok() })
    });
    let results = futures::future::join_all(checks).await;
    assert!(results.into_iter().all(|r| r.expect("task")), "every concurrent check verifies after the one reload");
    assert!(warm.has_key(&kid));

    let warm = load().await.with_reload(QUICK, QUICK);
    let current = admin.sign(b"x").kid;
    let retire = async |kid: &str| admin.retire(kid).await;
    retired_keys_stop_verifying(&warm, &old_token, &first, retire, &current).await;
    let cold = load().await;
    assert_eq!(links::verify_link_fresh(&cold, &old_token, 0).await.map(|_| ()), Err(LinkError::UnknownKey));
    assert!(cold.keyset().is_retired(&first) && !cold.keyset().has_kid(&first));
    assert_ne!(cold.rotate().await.expect("rotate"), first, "a retired id never becomes current");
}
