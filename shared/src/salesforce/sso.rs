//! "Login with Salesforce": the login token forcelink hands the platform, and the `next` check.
//!
//! The token is a compact JWS (RFC 7515) signed with Ed25519 (`alg: EdDSA`, RFC 8037), so the
//! platform verifies it with public keys only: `GET /.well-known/jwks.json` serves them with
//! their key ids. Each signing key is derived from one of the key ring's HMAC keys
//! (`HMAC(k, "forcelink-sso-ed25519-v1")` as the Ed25519 seed), so it rotates with them and
//! needs no storage of its own; its key id is `sso-{hmac kid}`.
//!
//! Claims: `iss` (forcelink's public URL), `aud` (the platform's origin), `sub` (the directory
//! user), `site`, `org`, `sf_user`, `email`, `iat`, `exp` (at most [`LOGIN_TOKEN_SECS`] later),
//! `jti` (random; refusing a second use is the platform's job) and the checked `next` path.

use std::collections::BTreeMap;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::ports::keyring::{KeyRing, Signature};

/// How long a login token works.
pub const LOGIN_TOKEN_SECS: i64 = 120;
/// Longest token [`verify_login`] reads.
const MAX_TOKEN_LEN: usize = 4096;
/// What the HMAC key signs to make the Ed25519 seed.
const SEED_LABEL: &[u8] = b"forcelink-sso-ed25519-v1";
/// Key ids of login keys start with this.
const KID_PREFIX: &str = "sso-";

/// Who logged in, as the platform receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginClaims {
    /// forcelink's public URL.
    pub iss: String,
    /// The platform's origin (`https://host[:port]`).
    pub aud: String,
    /// The platform's directory user id.
    pub sub: String,
    pub site: String,
    /// The 18-char Salesforce org and user ids.
    pub org: String,
    pub sf_user: String,
    pub email: String,
    pub iat: i64,
    pub exp: i64,
    /// Random: lets the platform refuse a second use.
    pub jti: String,
    /// Where the platform sends the person (a checked relative path).
    pub next: String,
}

/// Why a login token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginTokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token is for another audience or issuer")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
}

/// One login signing key.
struct LoginKey {
    kid: String,
    pair: Ed25519KeyPair,
}

fn login_key(seed: &Signature) -> Option<LoginKey> {
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed.tag).ok()?;
    Some(LoginKey { kid: format!("{KID_PREFIX}{}", seed.kid), pair })
}

/// The login key of the current HMAC key.
fn current_key(keys: &dyn KeyRing) -> LoginKey {
    // A 32-byte seed is always a valid Ed25519 private key.
    login_key(&keys.sign(SEED_LABEL)).unwrap_or_else(|| unreachable!("32-byte Ed25519 seed"))
}

/// Signs a login token with the current key.
pub fn mint_login(keys: &dyn KeyRing, claims: &LoginClaims) -> String {
    let key = current_key(keys);
    let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": key.kid });
    let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(serde_json::to_vec(claims).unwrap_or_default()));
    let sig = key.pair.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig.as_ref()))
}

/// The JSON Web Key Set that verifies login tokens (`/.well-known/jwks.json`): one key per
/// HMAC key that still verifies, the current one first, so tokens minted by a process that has
/// not seen a rotation yet keep verifying, and a retired key's tokens stop.
pub fn jwks(keys: &dyn KeyRing) -> serde_json::Value {
    let jwk = |key: LoginKey| {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": key.kid,
            "x": B64.encode(key.pair.public_key().as_ref()),
        })
    };
    let published: Vec<serde_json::Value> =
        keys.signing_kids().iter().filter_map(|kid| keys.sign_with(kid, SEED_LABEL)).filter_map(|s| login_key(&s)).map(jwk).collect();
    serde_json::json!({ "keys": published })
}

/// Checks a login token as a platform would, against a JWKS document: signature, `aud`,
/// `iss` and `exp` at `now`. (The platform's own check; forcelink uses it in tests and the demo.)
pub fn verify_login(jwks: &serde_json::Value, token: &str, iss: &str, aud: &str, now: i64) -> Result<LoginClaims, LoginTokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(LoginTokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(LoginTokenError::Malformed);
    };
    let decode = |s: &str| B64.decode(s).map_err(|_| LoginTokenError::Malformed);
    let header: serde_json::Value = serde_json::from_slice(&decode(h)?).map_err(|_| LoginTokenError::Malformed)?;
    if header["alg"] != "EdDSA" {
        return Err(LoginTokenError::Malformed);
    }
    let kid = header["kid"].as_str().ok_or(LoginTokenError::Malformed)?;
    let x = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid && k["crv"] == "Ed25519"))
        .and_then(|k| k["x"].as_str())
        .ok_or(LoginTokenError::UnknownKey)?;
    let public = decode(x)?;
    UnparsedPublicKey::new(&ED25519, public)
        .verify(format!("{h}.{p}").as_bytes(), &decode(s)?)
        .map_err(|_| LoginTokenError::BadSignature)?;
    let claims: LoginClaims = serde_json::from_slice(&decode(p)?).map_err(|_| LoginTokenError::Malformed)?;
    if claims.aud != aud || claims.iss != iss {
        return Err(LoginTokenError::WrongAudience);
    }
    if claims.exp <= now {
        return Err(LoginTokenError::Expired);
    }
    Ok(claims)
}

/// The action and hidden fields of a form_post page (what a browser submits to the platform;
/// `forcelink demo` and the tests read the page this way).
pub fn read_form_post(page: &str) -> Option<(String, BTreeMap<String, String>)> {
    fn attr(tag: &str, name: &str) -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    }
    fn unescape(text: &str) -> String {
        text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    }
    let form = &page[page.find("<form")?..];
    let action = attr(&form[..form.find('>')?], "action")?;
    let mut fields = BTreeMap::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>')?];
        fields.insert(attr(tag, "name")?, attr(tag, "value")?);
    }
    Some((action, fields))
}

/// The origin (`scheme://host[:port]`) of a URL, the login token's audience.
pub fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether `next` is a safe relative path on the platform: the same strict check as link
/// targets ([`crate::target::validate`]), so `/%2F%2Fevil` and `/%5Cevil` are refused too.
pub fn safe_next(next: &str) -> bool {
    crate::target::validate(next).is_ok()
}

#[cfg(test)]
#[cfg(feature = "embedded")]
mod tests {
    use super::*;
    use crate::backends::local_keyring::LocalKeyRing;

    #[test]
    fn next_must_stay_on_the_platform() {
        for ok in ["/", "/surveys/1?x=y#z", "/a/b"] {
            assert!(safe_next(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%2e%2e/admin",
            "evil",
            "",
            "/\n",
            "javascript:alert(1)",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }

    fn claims(now: i64) -> LoginClaims {
        LoginClaims {
            iss: "https://links.example".into(),
            aud: "https://acme.platform.example".into(),
            sub: "u-ana".into(),
            site: "acme".into(),
            org: "00D000000000001AAA".into(),
            sf_user: "005000000000001AAA".into(),
            email: "ana@acme.example".into(),
            iat: now,
            exp: now + LOGIN_TOKEN_SECS,
            jti: "n1".into(),
            next: "/".into(),
        }
    }

    fn keyring() -> (tempfile::TempDir, LocalKeyRing) {
        let dir = tempfile::tempdir().unwrap();
        let keys = LocalKeyRing::open(&dir.path().join("keys.json")).unwrap();
        (dir, keys)
    }

    #[test]
    fn a_token_verifies_with_the_published_keys_only() {
        let (_dir, keys) = keyring();
        let token = mint_login(&keys, &claims(1000));
        let set = jwks(&keys);
        let ok = verify_login(&set, &token, "https://links.example", "https://acme.platform.example", 1000).unwrap();
        assert_eq!(ok, claims(1000));
        assert_eq!(verify_login(&set, &token, "https://links.example", "https://evil.example", 1000), Err(LoginTokenError::WrongAudience));
        assert_eq!(
            verify_login(&set, &token, "https://links.example", "https://acme.platform.example", 1000 + LOGIN_TOKEN_SECS),
            Err(LoginTokenError::Expired)
        );
        // After a rotation both keys are published; a retired key's tokens stop verifying.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let old = LocalKeyRing::open(&path).unwrap();
        let before = mint_login(&old, &claims(1000));
        let new_kid = LocalKeyRing::rotate(&path).unwrap();
        let rotated = LocalKeyRing::open(&path).unwrap();
        let both = jwks(&rotated);
        assert_eq!(both["keys"].as_array().unwrap().len(), 2);
        assert_eq!(both["keys"][0]["kid"], format!("sso-{new_kid}"), "the current key first");
        assert!(verify_login(&both, &before, "https://links.example", "https://acme.platform.example", 1000).is_ok());
        let old_kid = old.sign(b"").kid;
        LocalKeyRing::retire(&path, &old_kid).unwrap();
        let after = jwks(&LocalKeyRing::open(&path).unwrap());
        assert_eq!(
            verify_login(&after, &before, "https://links.example", "https://acme.platform.example", 1000),
            Err(LoginTokenError::UnknownKey)
        );
        let other = jwks(&keyring().1);
        assert!(verify_login(&other, &token, "https://links.example", "https://acme.platform.example", 1000).is_err());
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let mut forged = claims(1000);
        forged.sub = "u-boss".into();
        let forged = format!("{head}.{}.{sig}", B64.encode(serde_json::to_vec(&forged).unwrap()));
        assert_eq!(
            verify_login(&set, &forged, "https://links.example", "https://acme.platform.example", 1000),
            Err(LoginTokenError::BadSignature)
        );
    }
}
