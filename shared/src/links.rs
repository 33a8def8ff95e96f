//! Signed email links: compact, URL-safe tokens that carry a site, a recipient (a directory
//! user, or a workflow contact of a list), a target path under the platform, an expiry and a
//! nonce, signed with HMAC-SHA256 under a key id.
//!
//! The token is one base64url string (no padding) of this binary layout:
//!
//! ```text
//! kid_len u8 · kid · purpose u8 · flags u8 · expires_at i64 BE · [issued_at i64 BE]
//!        · nonce (u16 BE len + bytes) · site (…) · user (…) · target (…) · [list (…)] · [renews (…)] · tag [32]
//! ```
//!
//! The tag is `HMAC-SHA256(key[kid], purpose ‖ … )`. `purpose` separates links (`0xFA`) from
//! renewal tickets (`0xFB`, whose body is `0xFB · ticket expiry · ticket id` then the link's
//! fields from `flags` on); neither byte can start UTF-8 text, so no other message forcelink
//! signs can pass for a link. Flags say which optional fields follow: `issued_at` (so a fresh
//! link can keep the original's lifetime), `list` (the recipient is the contact `user` of that
//! list, not a directory user) and `renews` (the nonce of the original link a fresh link
//! replaces). The key id travels in the token, so a key rotation leaves unexpired links
//! working. Lengths are checked before anything is decoded.

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
/// Longest contact list name, in bytes.
pub const MAX_LIST_LEN: usize = 128;
/// Longest nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest key id, in bytes.
pub const MAX_KID_LEN: usize = 32;
const TAG_LEN: usize = 32;
const MAX_BYTES: usize = 1
    + MAX_KID_LEN
    + 1
    + 8
    + 2
    + MAX_NONCE_LEN
    + 1
    + 8
    + 8
    + 2
    + MAX_NONCE_LEN
    + 2
    + MAX_SITE_LEN
    + 2
    + MAX_USER_LEN
    + 2
    + MAX_TARGET_LEN
    + 2
    + MAX_LIST_LEN
    + 2
    + MAX_NONCE_LEN
    + TAG_LEN;
/// Longest token text [`verify`] looks at; anything longer is malformed without decoding.
pub const MAX_TOKEN_LEN: usize = MAX_BYTES.div_ceil(3) * 4;
/// Shortest possible token text.
const MIN_TOKEN_LEN: usize = (1 + 1 + 1 + 1 + 8 + 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + TAG_LEN) * 4 / 3;

const PURPOSE_LINK: u8 = 0xFA;
const PURPOSE_RENEWAL: u8 = 0xFB;
const FLAG_SINGLE_USE: u8 = 0x01;
const FLAG_ISSUED: u8 = 0x02;
const FLAG_RENEWS: u8 = 0x04;
const FLAG_CONTACT: u8 = 0x08;
const KNOWN_FLAGS: u8 = FLAG_SINGLE_USE | FLAG_ISSUED | FLAG_RENEWS | FLAG_CONTACT;

/// What a link says: who it is for, where it leads, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub site: String,
    /// The recipient: a directory user id, or (with [`list`](Self::list)) a contact id.
    pub user: String,
    /// The contact list of the recipient, when it is a workflow contact (someone a workflow
    /// invited, e.g. a Salesforce Contact) rather than a directory user.
    pub list: Option<String>,
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
    /// Claims for a directory user, with a fresh nonce.
    pub fn new(site: &str, user: &str, target: &str, expires_at: i64, single_use: bool) -> Self {
        Self { site: site.into(), user: user.into(), list: None, target: target.into(), expires_at, single_use, nonce: new_nonce() }
    }

    /// The same claims for the contact `user` of `list`.
    pub fn for_contact(self, list: &str) -> Self {
        Self { list: Some(list.into()), ..self }
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
            && self.nonce.len() <= MAX_NONCE_LEN
            && self.list.as_ref().is_none_or(|l| !l.is_empty() && l.len() <= MAX_LIST_LEN);
        if fits { Ok(()) } else { Err(LinkError::Malformed) }
    }
}

/// A link with what the token says beyond its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub claims: LinkClaims,
    /// When it was made (epoch seconds), if the token says.
    pub issued_at: Option<i64>,
    /// For a fresh link: the nonce of the original link it replaces.
    pub renews: Option<String>,
}

impl Link {
    /// A link with nothing beyond `claims`.
    pub fn plain(claims: LinkClaims) -> Self {
        Self { claims, issued_at: None, renews: None }
    }

    /// How long the link was made to work (`expires_at − issued_at`), if known and positive.
    pub fn lifetime(&self) -> Option<i64> {
        self.issued_at.map(|at| self.claims.expires_at.saturating_sub(at)).filter(|secs| *secs > 0)
    }

    /// The nonce of the original link: its own, unless it is a fresh link replacing another.
    pub fn origin(&self) -> &str {
        self.renews.as_deref().unwrap_or(&self.claims.nonce)
    }
}

/// A renewal ticket: it lets the bearer ask for a fresh link to `link` to be emailed to the
/// link's user. It carries the link's own nonce (and origin), never the link's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalTicket {
    /// Random and unique per ticket.
    pub id: String,
    /// Epoch seconds; the ticket is refused from this second on.
    pub expires_at: i64,
    /// The link it renews.
    pub link: Link,
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
    /// Signed with a key this key ring does not have (or a retired one).
    #[error("link token is signed with an unknown key")]
    UnknownKey,
    /// Genuine but past its expiry; the link is kept so a fresh one can be offered.
    #[error("link token has expired")]
    Expired(Box<Link>),
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
    mint_link(keys, &Link::plain(claims.clone()))
}

/// Signs `claims` issued at `issued_at` (epoch seconds), so a fresh link can keep its lifetime.
pub fn mint_issued(keys: &dyn KeyRing, claims: &LinkClaims, issued_at: i64) -> String {
    mint_link(keys, &Link { claims: claims.clone(), issued_at: Some(issued_at), renews: None })
}

/// Signs a link with its optional fields.
pub fn mint_link(keys: &dyn KeyRing, link: &Link) -> String {
    let mut body = vec![PURPOSE_LINK];
    put_link(&mut body, link);
    sign(keys, body)
}

/// Checks a token's length, layout, key and signature (constant time), then its expiry at
/// `now` (epoch seconds).
pub fn verify(keys: &dyn KeyRing, token: &str, now: i64) -> Result<LinkClaims, LinkError> {
    verify_link(keys, token, now).map(|link| link.claims)
}

/// [`verify`], with the token's optional fields.
pub fn verify_link(keys: &dyn KeyRing, token: &str, now: i64) -> Result<Link, LinkError> {
    let link = open(keys, token, PURPOSE_LINK, read_link)?;
    if now >= link.claims.expires_at {
        return Err(LinkError::Expired(Box::new(link)));
    }
    Ok(link)
}

/// [`verify_link`] after letting the key ring reload its keys for the token's key id
/// ([`KeyRing::refresh_for`]): a token signed by a key added since this process started
/// verifies, one signed by a retired key does not.
pub async fn verify_link_fresh(keys: &dyn KeyRing, token: &str, now: i64) -> Result<Link, LinkError> {
    if let Some(kid) = token_kid(token) {
        keys.refresh_for(&kid).await;
    }
    verify_link(keys, token, now)
}

/// Signs a renewal ticket: it is never accepted as a link.
pub fn mint_renewal(keys: &dyn KeyRing, ticket: &RenewalTicket) -> String {
    let mut body = vec![PURPOSE_RENEWAL];
    body.extend_from_slice(&ticket.expires_at.to_be_bytes());
    put_text(&mut body, &ticket.id);
    put_link(&mut body, &ticket.link);
    sign(keys, body)
}

/// Checks a renewal ticket as [`verify_link`] checks a link (after [`KeyRing::refresh_for`]);
/// an expired ticket gives [`LinkError::Expired`] with the link it names.
pub async fn verify_renewal(keys: &dyn KeyRing, ticket: &str, now: i64) -> Result<RenewalTicket, LinkError> {
    if let Some(kid) = token_kid(ticket) {
        keys.refresh_for(&kid).await;
    }
    let ticket = open(keys, ticket, PURPOSE_RENEWAL, |r| {
        let expires_at = r.i64()?;
        let id = r.text(MAX_NONCE_LEN)?;
        Ok(RenewalTicket { id, expires_at, link: read_link(r)? })
    })?;
    if now >= ticket.expires_at {
        return Err(LinkError::Expired(Box::new(ticket.link)));
    }
    Ok(ticket)
}

/// The link URL for a token: `{public}/l/{token}`.
pub fn link_url(public_url: &url::Url, token: &str) -> String {
    format!("{}/l/{token}", public_url.as_str().trim_end_matches('/'))
}

/// The key id a token names, if it has the shape of one (nothing is verified).
pub fn token_kid(token: &str) -> Option<String> {
    let (kid, _) = split(token).ok()?;
    Some(kid.to_string())
}

/// Appends the link's fields, from `flags` on.
fn put_link(body: &mut Vec<u8>, link: &Link) {
    let c = &link.claims;
    let mut flags = if c.single_use { FLAG_SINGLE_USE } else { 0 };
    flags |= if link.issued_at.is_some() { FLAG_ISSUED } else { 0 };
    flags |= if link.renews.is_some() { FLAG_RENEWS } else { 0 };
    flags |= if c.list.is_some() { FLAG_CONTACT } else { 0 };
    body.push(flags);
    body.extend_from_slice(&c.expires_at.to_be_bytes());
    if let Some(at) = link.issued_at {
        body.extend_from_slice(&at.to_be_bytes());
    }
    for field in [&c.nonce, &c.site, &c.user, &c.target] {
        put_text(body, field);
    }
    if let Some(list) = &c.list {
        put_text(body, list);
    }
    if let Some(renews) = &link.renews {
        put_text(body, renews);
    }
}

fn put_text(body: &mut Vec<u8>, field: &str) {
    let bytes = &field.as_bytes()[..field.len().min(u16::MAX as usize)];
    body.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    body.extend_from_slice(bytes);
}

/// `kid_len · kid · body · tag`, base64url.
fn sign(keys: &dyn KeyRing, body: Vec<u8>) -> String {
    let sig = keys.sign(&body);
    let kid = &sig.kid.as_bytes()[..sig.kid.len().min(u8::MAX as usize)];
    let mut raw = Vec::with_capacity(1 + kid.len() + body.len() + TAG_LEN);
    raw.push(kid.len() as u8);
    raw.extend_from_slice(kid);
    raw.extend_from_slice(&body);
    raw.extend_from_slice(&sig.tag);
    B64.encode(raw)
}

/// Decodes a token into its key id and the rest (body and tag), checking lengths first.
fn split(token: &str) -> Result<(String, Vec<u8>), LinkError> {
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
    let kid = std::str::from_utf8(kid).map_err(|_| LinkError::Malformed)?.to_string();
    Ok((kid, rest.to_vec()))
}

/// Checks layout, key and signature; `read` parses the body after the purpose byte.
fn open<T>(keys: &dyn KeyRing, token: &str, purpose: u8, read: impl FnOnce(&mut Reader) -> Result<T, LinkError>) -> Result<T, LinkError> {
    let (kid, rest) = split(token)?;
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut r = Reader(body);
    if r.take(1)? != [purpose] {
        return Err(LinkError::Malformed);
    }
    let parsed = read(&mut r)?;
    if !r.0.is_empty() {
        return Err(LinkError::Malformed);
    }
    if !keys.has_key(&kid) {
        return Err(LinkError::UnknownKey);
    }
    if !keys.verify(&kid, body, tag) {
        return Err(LinkError::BadSignature);
    }
    Ok(parsed)
}

/// Reads the link's fields, from `flags` on.
fn read_link(r: &mut Reader) -> Result<Link, LinkError> {
    let flags = r.take(1)?[0];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(LinkError::Malformed);
    }
    let expires_at = r.i64()?;
    let issued_at = if flags & FLAG_ISSUED != 0 { Some(r.i64()?) } else { None };
    let nonce = r.text(MAX_NONCE_LEN)?;
    let site = r.text(MAX_SITE_LEN)?;
    let user = r.text(MAX_USER_LEN)?;
    let target = r.text(MAX_TARGET_LEN)?;
    let list = if flags & FLAG_CONTACT != 0 { Some(r.text(MAX_LIST_LEN)?) } else { None };
    let renews = if flags & FLAG_RENEWS != 0 { Some(r.text(MAX_NONCE_LEN)?) } else { None };
    let claims = LinkClaims { site, user, list, target, expires_at, single_use: flags & FLAG_SINGLE_USE != 0, nonce };
    Ok(Link { claims, issued_at, renews })
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

    fn i64(&mut self) -> Result<i64, LinkError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().map_err(|_| LinkError::Malformed)?))
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
    use crate::ports::BackendError;
    use crate::ports::keyring::{KeyError, Sealed, Signature};
    use proptest::prelude::*;
    use zeroize::Zeroizing;

    /// A key ring of HMAC keys only.
    struct Keys(HmacKeySet);

    #[async_trait::async_trait]
    impl KeyRing for Keys {
        async fn seal(&self, _: &[u8], _: &[u8]) -> Result<Sealed, KeyError> {
            Err(KeyError::Backend(BackendError::msg("not here")))
        }
        async fn open(&self, _: &Sealed, _: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
            Err(KeyError::Backend(BackendError::msg("not here")))
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

    #[tokio::test]
    async fn expiry_unknown_key_rotation_and_purpose() {
        let k = keys("k1", 1);
        let c = claims();
        let token = mint(&k, &c);
        assert_eq!(verify(&k, &token, c.expires_at), Err(LinkError::Expired(Box::new(Link::plain(c.clone())))));
        assert_eq!(verify(&keys("k2", 1), &token, 0), Err(LinkError::UnknownKey));
        assert_eq!(verify(&keys("k1", 2), &token, 0), Err(LinkError::BadSignature));
        // After a rotation the old key still verifies; once retired it does not.
        let mut set = k.0.clone();
        set.rotate();
        let rotated = Keys(set.clone());
        assert_eq!(verify(&rotated, &token, 0).unwrap(), c);
        assert_ne!(mint(&rotated, &c), token);
        set.retire("k1").unwrap();
        assert_eq!(verify(&Keys(set), &token, 0), Err(LinkError::UnknownKey));
        // A renewal ticket is not a link, nor the other way round.
        let ticket = RenewalTicket { id: new_nonce(), expires_at: 10, link: Link::plain(c.clone()) };
        let text = mint_renewal(&k, &ticket);
        assert_eq!(verify(&k, &text, 0), Err(LinkError::Malformed));
        assert_eq!(verify_renewal(&k, &token, 0).await, Err(LinkError::Malformed));
        assert_eq!(verify_renewal(&k, &text, 0).await.unwrap(), ticket);
        assert_eq!(verify_renewal(&k, &text, 10).await, Err(LinkError::Expired(Box::new(Link::plain(c)))));
    }

    #[tokio::test]
    async fn issued_and_renews_roundtrip_and_are_signed() {
        let k = keys("k1", 1);
        let link = Link { claims: claims(), issued_at: Some(1_999_000_000), renews: Some(new_nonce()) };
        let token = mint_link(&k, &link);
        assert_eq!(verify_link(&k, &token, 0).unwrap(), link);
        assert_eq!(verify_link_fresh(&k, &token, 0).await.unwrap(), link);
        assert_eq!(link.lifetime(), Some(1_000_000));
        assert_eq!(link.origin(), link.renews.as_deref().unwrap());
        let plain = verify_link(&k, &mint(&k, &claims()), 0).unwrap();
        assert_eq!((plain.lifetime(), plain.origin()), (None, plain.claims.nonce.as_str()));
        let issued = verify_link(&k, &mint_issued(&k, &claims(), 2_000_000_001), 0).unwrap();
        assert_eq!(issued.lifetime(), None, "a lifetime that is not positive is unknown");
        assert!(mint(&k, &claims()).len() < 160);
        assert!(token.len() < 200, "{} chars", token.len());
        // The optional fields are under the tag: drop the flag bit and the token breaks.
        let mut raw = B64.decode(&token).unwrap();
        let flags = 1 + 2 + 1;
        raw[flags] &= !FLAG_RENEWS;
        assert!(verify_link(&k, &B64.encode(&raw), 0).is_err());
        assert_eq!(token_kid(&token).as_deref(), Some("k1"));
        assert_eq!(token_kid("nope"), None);
    }

    #[test]
    fn contact_links_roundtrip_and_cannot_pass_for_a_users() {
        let k = keys("k1", 1);
        let contact = claims().for_contact("invitees");
        let link = Link { claims: contact.clone(), issued_at: Some(1_999_000_000), renews: Some(new_nonce()) };
        let token = mint_link(&k, &link);
        assert_eq!(verify_link(&k, &token, 0).unwrap(), link);
        // Dropping the contact flag (and so reading `list` as something else) breaks the tag.
        let mut raw = B64.decode(&token).unwrap();
        raw[1 + 2 + 1] &= !FLAG_CONTACT;
        assert!(verify_link(&k, &B64.encode(&raw), 0).is_err());
        let too_long = claims().for_contact(&"l".repeat(MAX_LIST_LEN + 1));
        assert_eq!(too_long.check(), Err(LinkError::Malformed));
        assert_eq!(claims().for_contact("").check(), Err(LinkError::Malformed));
        assert!(verify(&k, &mint(&k, &too_long), 0).is_err());
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
                                exp in 1i64..i64::MAX, single in any::<bool>(), list in proptest::option::of("\\PC{1,40}")) {
            let k = keys("kA", 7);
            let c = LinkClaims { list, ..LinkClaims::new(&site, &user, &target, exp, single) };
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
