//! The `KeyRing` contract: every backend (KMS, local key file) must pass all of it.

use std::sync::Arc;
use std::time::Instant;

use forcelink::ports::keyring::{KeyError, KeyRing, Sealed};

/// Runs every key ring check on `ring`. `rotate` adds a new current HMAC key to the ring's
/// durable keyset and returns its id; `reopen` opens the same keys afresh (a new process).
pub async fn keyring_contract(
    ring: Arc<dyn KeyRing>,
    mut rotate: impl AsyncFnMut() -> String,
    mut reopen: impl AsyncFnMut() -> Arc<dyn KeyRing>,
) {
    let r = ring.as_ref();
    sealing(r).await;
    tampering(r).await;
    signing(r);

    // Rotation: a new current key; the old one keeps verifying, in this process and the next.
    let old = r.sign(b"before rotation");
    let new_kid = rotate().await;
    assert_ne!(new_kid, old.kid, "rotation makes a new key id");
    let later = reopen().await;
    let new = later.sign(b"after rotation");
    assert_eq!(new.kid, new_kid, "the new key signs after a rotation");
    assert!(later.verify(&old.kid, b"before rotation", &old.tag), "the old key still verifies after a rotation");
    assert!(later.verify(&new.kid, b"after rotation", &new.tag));
    assert!(!later.verify(&new.kid, b"before rotation", &old.tag), "a tag checks only under its own key");
    let again = rotate().await;
    assert!(again != new_kid && again != old.kid);
    let third = reopen().await;
    assert!(third.verify(&old.kid, b"before rotation", &old.tag), "every old key keeps verifying");
    assert!(third.verify(&new.kid, b"after rotation", &new.tag));
    assert_eq!(third.sign(b"x").kid, again);

    // Sealed values survive a reopen (and rotations of the HMAC keys).
    let sealed = r.seal(b"refresh-token", b"site/acme/conn/1").await.expect("seal");
    let text = sealed.encode();
    let opened = third.open(&Sealed::decode(&text).expect("decode"), b"site/acme/conn/1").await.expect("open in another process");
    assert_eq!(opened.as_slice(), b"refresh-token");
}

async fn sealing(r: &dyn KeyRing) {
    for plaintext in [&b""[..], b"x", b"5Aep861.access-token!", &vec![0xA5u8; 256 * 1024]] {
        let sealed = r.seal(plaintext, b"aad").await.expect("seal");
        assert!(!sealed.kek.is_empty(), "the sealed value names its key-encryption key");
        assert!(!sealed.wrapped_key.is_empty());
        assert_eq!(sealed.ciphertext.len(), plaintext.len() + 16, "AES-GCM: plaintext + 16-byte tag");
        if plaintext.len() >= 8 {
            assert!(
                !sealed.ciphertext.windows(plaintext.len().min(64)).any(|w| w == &plaintext[..plaintext.len().min(64)]),
                "no plaintext in the ciphertext"
            );
        }
        let opened = r.open(&sealed, b"aad").await.expect("open");
        assert_eq!(opened.as_slice(), plaintext, "seal/open roundtrip ({} bytes)", plaintext.len());
        let decoded = Sealed::decode(&sealed.encode()).expect("decode");
        assert_eq!(decoded, sealed, "the text form roundtrips");
        assert_eq!(r.open(&decoded, b"aad").await.expect("open decoded").as_slice(), plaintext);
    }
    // Empty associated data is associated data too.
    let sealed = r.seal(b"v", b"").await.expect("seal");
    assert_eq!(r.open(&sealed, b"").await.expect("open").as_slice(), b"v");
    assert!(matches!(r.open(&sealed, b"x").await, Err(KeyError::Decrypt)));

    // Each seal has its own data key and nonce.
    let a = r.seal(b"same", b"aad").await.expect("seal");
    let b = r.seal(b"same", b"aad").await.expect("seal");
    assert_ne!(a.nonce, b.nonce, "fresh nonce per seal");
    assert_ne!(a.wrapped_key, b.wrapped_key, "fresh data key per seal");
    assert_ne!(a.ciphertext, b.ciphertext);
}

async fn tampering(r: &dyn KeyRing) {
    let sealed = r.seal(b"secret value", b"site/acme/conn/1").await.expect("seal");
    let decrypt_fails = |result: Result<zeroize::Zeroizing<Vec<u8>>, KeyError>, what: &str| {
        assert!(matches!(result, Err(KeyError::Decrypt)), "{what}: expected Decrypt, got {:?}", result.map(|_| "plaintext"));
    };
    decrypt_fails(r.open(&sealed, b"site/acme/conn/2").await, "other associated data");
    decrypt_fails(r.open(&sealed, b"").await, "missing associated data");
    for i in [0, sealed.ciphertext.len() / 2, sealed.ciphertext.len() - 1] {
        let mut t = sealed.clone();
        t.ciphertext[i] ^= 0x01;
        decrypt_fails(r.open(&t, b"site/acme/conn/1").await, "a flipped ciphertext bit");
    }
    let mut t = sealed.clone();
    t.ciphertext.truncate(t.ciphertext.len() - 1);
    decrypt_fails(r.open(&t, b"site/acme/conn/1").await, "a truncated ciphertext");
    let mut t = sealed.clone();
    t.nonce[0] ^= 0x80;
    decrypt_fails(r.open(&t, b"site/acme/conn/1").await, "another nonce");

    // Ciphertext moved under another value's data key.
    let other = r.seal(b"other value!", b"site/acme/conn/1").await.expect("seal");
    let swapped = Sealed { wrapped_key: other.wrapped_key.clone(), ..sealed.clone() };
    decrypt_fails(r.open(&swapped, b"site/acme/conn/1").await, "another value's data key");

    // A tampered wrapped key never opens. Which error depends on where the damage lands and on
    // the backend (moto's KMS answers AccessDenied for a blob naming no key, real KMS
    // InvalidCiphertext), so only the failure is part of the contract.
    for i in [0, sealed.wrapped_key.len() / 2, sealed.wrapped_key.len() - 1] {
        let mut t = sealed.clone();
        t.wrapped_key[i] ^= 0x01;
        let result = r.open(&t, b"site/acme/conn/1").await;
        assert!(result.is_err(), "a tampered wrapped key at byte {i} opened");
    }
    let mut t = sealed.clone();
    t.wrapped_key.truncate(4);
    assert!(r.open(&t, b"site/acme/conn/1").await.is_err(), "a truncated wrapped key");

    // Text forms that are not sealed values.
    for bad in ["", "v1", "v2.a.b.c.d", "v1.a.b.c", "v1.a.b.c.d.e", "v1.!!.b.c.d", "v1.YQ.YQ.YQ.YQ"] {
        assert!(matches!(Sealed::decode(bad), Err(KeyError::Malformed)), "{bad:?} does not decode");
    }
    // The original still opens after all that.
    assert_eq!(r.open(&sealed, b"site/acme/conn/1").await.expect("open").as_slice(), b"secret value");
}

fn signing(r: &dyn KeyRing) {
    let msg = b"site=acme&user=005xx&target=course/42&exp=1760000000";
    let sig = r.sign(msg);
    assert!(!sig.kid.is_empty(), "a signature names its key");
    assert!(sig.kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "key ids are URL-safe: {:?}", sig.kid);
    assert_eq!(r.sign(msg), sig, "HMAC is deterministic");
    assert!(r.verify(&sig.kid, msg, &sig.tag));
    assert!(!r.verify(&sig.kid, b"site=acme&user=005xx&target=course/43&exp=1760000000", &sig.tag), "another message");
    assert!(!r.verify(&sig.kid, b"", &sig.tag));
    let mut bad = sig.tag;
    bad[31] ^= 1;
    assert!(!r.verify(&sig.kid, msg, &bad), "a flipped tag bit");
    assert!(!r.verify(&sig.kid, msg, &sig.tag[..31]), "a truncated tag");
    assert!(!r.verify(&sig.kid, msg, &[sig.tag.as_slice(), &[0]].concat()), "a lengthened tag");
    assert!(!r.verify(&sig.kid, msg, &[]), "an empty tag");
    assert!(!r.verify("unknown-kid", msg, &sig.tag), "an unknown key id");
    assert!(!r.verify("", msg, &sig.tag), "an empty key id");
    assert!(r.has_key(&sig.kid), "the signing key is known");
    assert!(!r.has_key("unknown-kid") && !r.has_key(""), "an unknown key id is unknown");
    assert!(r.sign(b"").tag != sig.tag);

    // Signing and verifying are in-memory: fast even in a debug build.
    let start = Instant::now();
    for i in 0..2000u32 {
        let s = r.sign(&i.to_be_bytes());
        assert!(r.verify(&s.kid, &i.to_be_bytes(), &s.tag));
    }
    assert!(start.elapsed().as_millis() < 2000, "2,000 sign+verify took {:?}", start.elapsed());
}
