//! "Login with Salesforce": the login token forcelink hands the platform, and the `next` check.
//!
//! The token is a compact EdDSA JWS of kind `JWT` ([`crate::jws`]; the platform verifies it
//! with `GET /.well-known/jwks.json`). Claims: `iss` (forcelink's public URL), `aud` (the
//! platform's origin), `sub` (the directory user), `site`, `org`, `sf_user`, `email`, `iat`,
//! `exp` (at most [`LOGIN_TOKEN_SECS`] later), `jti` (random; refusing a second use is the
//! platform's job) and the checked `next` path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::jws::{self, TokenError};
use crate::ports::keyring::KeyRing;

/// How long a login token works.
pub const LOGIN_TOKEN_SECS: i64 = 120;
/// The login token's JWS `typ`.
const LOGIN_TYP: &str = "JWT";

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

/// Signs a login token with the current key.
pub fn mint_login(keys: &dyn KeyRing, claims: &LoginClaims) -> String {
    jws::mint(keys, LOGIN_TYP, claims)
}

/// Checks a login token as a platform would, against a JWKS document: signature, `aud`,
/// `iss` and `exp` at `now`. (The platform's own check; forcelink uses it in tests and the demo.)
pub fn verify_login(jwks: &serde_json::Value, token: &str, iss: &str, aud: &str, now: i64) -> Result<LoginClaims, TokenError> {
    jws::verify(jwks, LOGIN_TYP, token, iss, aud, now)
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

/// Whether `next` is a safe relative path on the platform: the same strict check as link
/// targets ([`crate::target::validate`]), so `/%2F%2Fevil` and `/%5Cevil` are refused too.
pub fn safe_next(next: &str) -> bool {
    crate::target::validate(next).is_ok()
}

#[cfg(test)]
#[cfg(feature = "embedded")]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use super::*;
    use crate::backends::local_keyring::LocalKeyRing;
    use crate::jws::jwks;

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
        assert_eq!(verify_login(&set, &token, "https://links.example", "https://evil.example", 1000), Err(TokenError::WrongAudience));
        assert_eq!(
            verify_login(&set, &token, "https://links.example", "https://acme.platform.example", 1000 + LOGIN_TOKEN_SECS),
            Err(TokenError::Expired)
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
            Err(TokenError::UnknownKey)
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
            Err(TokenError::BadSignature)
        );
    }
}
