//! Signed email links: compact, URL-safe tokens that carry a site, a directory user, a target
//! path under the platform, an expiry and a nonce, signed with HMAC-SHA256 under a key id.
//!
//! The token is one base64url string (no padding) of this binary layout:
//!
//! ```text
//! kid_len u8 · kid · purpose u8 · flags u8 · expires_at i64 BE
//!        · nonce (u16 BE len + bytes) · site (…) · user (…) · target (…) · tag [32]
//! ```
//!
//! The tag is `HMAC-SHA256(key[kid], purpose ‖ … ‖ target)`. `purpose` separates links
//! (`0xFA`) from renewal tickets (`0xFB`); neither byte can start UTF-8 text, so no other
//! message forcelink signs can pass for a link. The key id travels in the token, so a key
//! rotation leaves unexpired links working. Lengths are checked before anything is decoded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;

use crate::ports::keyring::KeyRing;

/// Longest target path a link carries, in bytes.
pub const MAX_TARGET_LEN: usize = 1024;
/// Longest site id, in bytes.
pub const MAX_SITE_LEN: usize = 64;
/// Longest directory user id, in bytes.
pub const MAX_USER_LEN: usize = 255;
/// Longest nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest key id, in bytes.
pub const MAX_KID_LEN: usize = 32;
const TAG_LEN: usize = 32;
const MAX_BYTES: usize =
    1 + MAX_KID_LEN + 1 + 1 + 8 + 2 + MAX_NONCE_LEN + 2 + MAX_SITE_LEN + 2 + MAX_USER_LEN + 2 + MAX_TARGET_LEN + TAG_LEN;
/// Longest token text [`verify`] looks at; anything longer is malformed without decoding.
pub const MAX_TOKEN_LEN: usize = MAX_BYTES.div_ceil(3) * 4;
/// Shortest possible token text.
const MIN_TOKEN_LEN: usize = (1 + 1 + 1 + 1 + 8 + 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + TAG_LEN) * 4 / 3;

const PURPOSE_LINK: u8 = 0xFA;
const PURPOSE_RENEWAL: u8 = 0xFB;
const FLAG_SINGLE_USE: u8 = 0x01;

/// What a link says: who it is for, where it leads, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub site: String,
    /// The directory user id of the recipient.
    pub user: String,
    /// A target path under the platform, e.g. `/surveys/onboarding`.
    pub target: String,
    /// Epoch seconds; the link is refused from this second on.
    pub expires_at: i64,
    /// The first click (a `GET` that is not a prefetch) uses the link up.
    pub single_use: bool,
    /// Random and unique per link: revocation, single use and click records key on it.
    pub nonce: String,
}

impl LinkClaims {
    /// Claims with a fresh nonce.
    pub fn new(site: &str, user: &str, target: &str, expires_at: i64, single_use: bool) -> Self {
        Self { site: site.into(), user: user.into(), target: target.into(), expires_at, single_use, nonce: new_nonce() }
    }

    /// Checks the field lengths [`verify`] enforces, so a caller can refuse before minting.
    pub fn check(&self) -> Result<(), LinkError> {
        let fits = !self.site.is_empty()
            && self.site.len() <= MAX_SITE_LEN
            && !self.user.is_empty()
            && self.user.len() <= MAX_USER_LEN
            && !self.target.is_empty()
            && self.target.len() <= MAX_TARGET_LEN
            && !self.nonce.is_empty()
            && self.nonce.len() <= MAX_NONCE_LEN;
        if fits { Ok(()) } else { Err(LinkError::Malformed) }
    }
}

/// Why a token was refused. None of them carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token: wrong length, alphabet or layout (often a link cut short in an email).
    #[error("link token is malformed")]
    Malformed,
    /// The tag does not match: the token was changed.
    #[error("link token signature does not match")]
    BadSignature,
    /// Signed with a key this key ring does not have.
    #[error("link token is signed with an unknown key")]
    UnknownKey,
    /// Genuine but past its expiry; the claims are kept so a fresh link can be offered.
    #[error("link token has expired")]
    Expired(Box<LinkClaims>),
}

/// A fresh random nonce: 12 random bytes as 16 base64url characters.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// Signs `claims` into a compact URL-safe token. Claims that fail [`LinkClaims::check`] give a
/// token that [`verify`] refuses as malformed.
pub fn mint(keys: &dyn KeyRing, claims: &LinkClaims) -> String {
    mint_as(keys, claims, PURPOSE_LINK)
}

/// Checks a token's length, layout, key and signature (constant time), then its expiry at
/// `now` (epoch seconds).
pub fn verify(keys: &dyn KeyRing, token: &str, now: i64) -> Result<LinkClaims, LinkError> {
    verify_as(keys, token, now, PURPOSE_LINK)
}

/// Signs a renewal ticket: it lets the bearer ask for a fresh link to be emailed to the
/// claims' user, and is never accepted as a link.
pub fn mint_renewal(keys: &dyn KeyRing, claims: &LinkClaims) -> String {
    mint_as(keys, claims, PURPOSE_RENEWAL)
}

/// Checks a renewal ticket as [`verify`] checks a link.
pub fn verify_renewal(keys: &dyn KeyRing, ticket: &str, now: i64) -> Result<LinkClaims, LinkError> {
    verify_as(keys, ticket, now, PURPOSE_RENEWAL)
}

/// The link URL for a token: `{public}/l/{token}`.
pub fn link_url(public_url: &url::Url, token: &str) -> String {
    format!("{}/l/{token}", public_url.as_str().trim_end_matches('/'))
}

fn mint_as(keys: &dyn KeyRing, claims: &LinkClaims, purpose: u8) -> String {
    let mut body = Vec::with_capacity(16 + claims.nonce.len() + claims.site.len() + claims.user.len() + claims.target.len() + 8);
    body.push(purpose);
    body.push(if claims.single_use { FLAG_SINGLE_USE } else { 0 });
    body.extend_from_slice(&claims.expires_at.to_be_bytes());
    for field in [&claims.nonce, &claims.site, &claims.user, &claims.target] {
        let bytes = &field.as_bytes()[..field.len().min(u16::MAX as usize)];
        body.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        body.extend_from_slice(bytes);
    }
    let sig = keys.sign(&body);
    let kid = &sig.kid.as_bytes()[..sig.kid.len().min(u8::MAX as usize)];
    let mut raw = Vec::with_capacity(1 + kid.len() + body.len() + TAG_LEN);
    raw.push(kid.len() as u8);
    raw.extend_from_slice(kid);
    raw.extend_from_slice(&body);
    raw.extend_from_slice(&sig.tag);
    B64.encode(raw)
}

fn verify_as(keys: &dyn KeyRing, token: &str, now: i64, purpose: u8) -> Result<LinkClaims, LinkError> {
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) {
        return Err(LinkError::Malformed);
    }
    // The decoder refuses padding, other alphabets and non-canonical trailing bits.
    let raw = B64.decode(token.as_bytes()).map_err(|_| LinkError::Malformed)?;
    let (&kid_len, rest) = raw.split_first().ok_or(LinkError::Malformed)?;
    let kid_len = usize::from(kid_len);
    if kid_len == 0 || kid_len > MAX_KID_LEN || rest.len() < kid_len + TAG_LEN {
        return Err(LinkError::Malformed);
    }
    let (kid, rest) = rest.split_at(kid_len);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let kid = std::str::from_utf8(kid).map_err(|_| LinkError::Malformed)?;
    let claims = parse_body(body, purpose)?;
    if !keys.has_key(kid) {
        return Err(LinkError::UnknownKey);
    }
    if !keys.verify(kid, body, tag) {
        return Err(LinkError::BadSignature);
    }
    if now >= claims.expires_at {
        return Err(LinkError::Expired(Box::new(claims)));
    }
    Ok(claims)
}

fn parse_body(body: &[u8], purpose: u8) -> Result<LinkClaims, LinkError> {
    let mut r = Reader(body);
    if r.take(1)? != [purpose] {
        return Err(LinkError::Malformed);
    }
    let flags = r.take(1)?[0];
    if flags & !FLAG_SINGLE_USE != 0 {
        return Err(LinkError::Malformed);
    }
    let expires_at = i64::from_be_bytes(r.take(8)?.try_into().map_err(|_| LinkError::Malformed)?);
    let nonce = r.text(MAX_NONCE_LEN)?;
    let site = r.text(MAX_SITE_LEN)?;
    let user = r.text(MAX_USER_LEN)?;
    let target = r.text(MAX_TARGET_LEN)?;
    if !r.0.is_empty() {
        return Err(LinkError::Malformed);
    }
    Ok(LinkClaims { site, user, target, expires_at, single_use: flags & FLAG_SINGLE_USE != 0, nonce })
}

/// A bounds-checked cursor over the token's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LinkError> {
        if self.0.len() < n {
            return Err(LinkError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    /// A length-prefixed UTF-8 field of 1 to `max` bytes.
    fn text(&mut self, max: usize) -> Result<String, LinkError> {
        let len = usize::from(u16::from_be_bytes(self.take(2)?.try_into().map_err(|_| LinkError::Malformed)?));
        if len == 0 || len > max {
            return Err(LinkError::Malformed);
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(str::to_string).map_err(|_| LinkError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::envelope::{HmacKeySet, key_from_slice};
    use crate::ports::keyring::{KeyError, Sealed, Signature};
    use proptest::prelude::*;
    use zeroize::Zeroizing;

    /// A key ring of HMAC keys only.
    struct Keys(HmacKeySet);

    #[async_trait::async_trait]
    impl KeyRing for Keys {
        async fn seal(&self, _: &[u8], _: &[u8]) -> Result<Sealed, KeyError> {
            Err(KeyError::Backend("not here".into()))
        }
        async fn open(&self, _: &Sealed, _: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
            Err(KeyError::Backend("not here".into()))
        }
        fn sign(&self, msg: &[u8]) -> Signature {
            self.0.sign(msg)
        }
        fn verify(&self, kid: &str, msg: &[u8], tag: &[u8]) -> bool {
            self.0.verify(kid, msg, tag)
        }
        fn has_key(&self, kid: &str) -> bool {
            self.0.kids().any(|k| k == kid)
        }
    }

    fn keys(kid: &str, byte: u8) -> Keys {
        Keys(HmacKeySet::from_keys(kid, [(kid.to_string(), key_from_slice(&[byte; 32]).unwrap())]).unwrap())
    }

    fn claims() -> LinkClaims {
        LinkClaims::new("acme", "u-1", "/surveys/onboarding", 2_000_000_000, true)
    }

    #[test]
    fn roundtrip_is_compact_and_url_safe() {
        let k = keys("k1", 1);
        let c = claims();
        let token = mint(&k, &c);
        assert!(token.len() < 160, "{} chars", token.len());
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(verify(&k, &token, 1_900_000_000).unwrap(), c);
        assert_eq!(link_url(&"https://f.example/".parse().unwrap(), "T"), "https://f.example/l/T");
    }

    #[test]
    fn expiry_unknown_key_rotation_and_purpose() {
        let k = keys("k1", 1);
        let c = claims();
        let token = mint(&k, &c);
        assert_eq!(verify(&k, &token, c.expires_at), Err(LinkError::Expired(Box::new(c.clone()))));
        assert_eq!(verify(&keys("k2", 1), &token, 0), Err(LinkError::UnknownKey));
        assert_eq!(verify(&keys("k1", 2), &token, 0), Err(LinkError::BadSignature));
        // After a rotation the old key still verifies.
        let mut set = k.0.clone();
        set.rotate();
        let rotated = Keys(set);
        assert_eq!(verify(&rotated, &token, 0).unwrap(), c);
        assert_ne!(mint(&rotated, &c), token);
        // A renewal ticket is not a link, nor the other way round.
        let ticket = mint_renewal(&k, &c);
        assert_eq!(verify(&k, &ticket, 0), Err(LinkError::Malformed));
        assert_eq!(verify_renewal(&k, &token, 0), Err(LinkError::Malformed));
        assert_eq!(verify_renewal(&k, &ticket, 0).unwrap(), c);
    }

    #[test]
    fn length_limits_hold_before_decoding() {
        let k = keys("k1", 1);
        assert_eq!(verify(&k, "", 0), Err(LinkError::Malformed));
        assert_eq!(verify(&k, &"A".repeat(MAX_TOKEN_LEN + 1), 0), Err(LinkError::Malformed));
        let mut long = claims();
        long.target = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        assert!(long.check().is_err());
        assert_eq!(verify(&k, &mint(&k, &long), 0), Err(LinkError::Malformed));
        long.target = format!("/{}", "a".repeat(MAX_TARGET_LEN - 1));
        long.user = "u".repeat(MAX_USER_LEN);
        long.site = "s".repeat(MAX_SITE_LEN);
        long.nonce = "n".repeat(MAX_NONCE_LEN);
        assert!(long.check().is_ok());
        assert_eq!(verify(&k, &mint(&k, &long), 0).unwrap(), long);
    }

    proptest! {
        #[test]
        fn any_claims_roundtrip(site in "[a-z0-9-]{1,40}", user in "\\PC{1,60}", target in "/\\PC{0,200}",
                                exp in 1i64..i64::MAX, single in any::<bool>()) {
            let k = keys("kA", 7);
            let c = LinkClaims::new(&site, &user, &target, exp, single);
            prop_assert_eq!(verify(&k, &mint(&k, &c), exp - 1).unwrap(), c);
        }

        #[test]
        fn changing_any_character_is_refused(pos in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_=+/.%-]") {
            let k = keys("kA", 7);
            let token = mint(&k, &claims());
            let i = pos.index(token.len());
            let mut bytes = token.clone().into_bytes();
            prop_assume!(bytes[i] != replacement.as_bytes()[0]);
            bytes[i] = replacement.as_bytes()[0];
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(verify(&k, &tampered, 0).is_err());
        }

        #[test]
        fn flipping_any_decoded_bit_is_refused(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = keys("kA", 7);
            let mut raw = B64.decode(mint(&k, &claims())).unwrap();
            let i = pos.index(raw.len());
            raw[i] ^= 1 << bit;
            prop_assert!(verify(&k, &B64.encode(&raw), 0).is_err());
        }

        #[test]
        fn truncating_or_extending_is_refused(cut in 1usize..100, extra in "[A-Za-z0-9_-]{1,8}") {
            let k = keys("kA", 7);
            let token = mint(&k, &claims());
            prop_assert!(verify(&k, &token[..token.len().saturating_sub(cut)], 0).is_err());
            let extended = format!("{token}{extra}");
            prop_assert!(verify(&k, &extended, 0).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let k = keys("kA", 7);
            prop_assert!(verify(&k, &text, 0).is_err());
        }
    }
}
