//! The contact reference: who followed a contact's link, as the platform receives it.
//!
//! A contact (someone a workflow invited, e.g. a Salesforce Contact) has no account on the
//! platform, so link-redirect sends them to `{platform_url}{target}` with `?flk_contact={token}`
//! added ([`PARAM`]). The token is a compact EdDSA JWS of kind `forcelink-contact+jwt`
//! ([`crate::jws`]; verify it with `GET /.well-known/jwks.json`, like the SSO login token, which
//! it can never pass for). Claims: `iss` (forcelink's public URL), `aud` (the platform's origin),
//! `sub` (the contact id: the Salesforce record id when there is one), `site`, `list`, `email`,
//! `iat`, `exp` (at most [`CONTACT_REF_SECS`] later: the token sits in a URL), `jti` (random per
//! click) and `link` (the nonce of the link followed, the same for every click on it).

use serde::{Deserialize, Serialize};

use crate::jws::{self, TokenError};
use crate::ports::keyring::KeyRing;

/// The query parameter that carries the reference to the platform.
pub const PARAM: &str = "flk_contact";
/// How long a reference works: long enough to load the landing page, short as a URL credential.
pub const CONTACT_REF_SECS: i64 = 600;
/// The reference's JWS `typ`.
const TYP: &str = "forcelink-contact+jwt";

/// Who followed the link, as the platform receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactClaims {
    /// forcelink's public URL.
    pub iss: String,
    /// The platform's origin (`https://host[:port]`).
    pub aud: String,
    /// The contact id within its list.
    pub sub: String,
    pub site: String,
    pub list: String,
    /// The contact's address as stored when the link was followed.
    pub email: String,
    pub iat: i64,
    pub exp: i64,
    /// Random per click.
    pub jti: String,
    /// The nonce of the link followed.
    pub link: String,
}

/// Signs a contact reference with the current key.
pub fn mint(keys: &dyn KeyRing, claims: &ContactClaims) -> String {
    jws::mint(keys, TYP, claims)
}

/// Checks a contact reference as the platform would: kind, signature, `aud`, `iss`, `exp`.
pub fn verify(jwks: &serde_json::Value, token: &str, iss: &str, aud: &str, now: i64) -> Result<ContactClaims, TokenError> {
    jws::verify(jwks, TYP, token, iss, aud, now)
}

/// `location` with the reference added as [`PARAM`] (after any query the target has).
pub fn append(location: &url::Url, token: &str) -> url::Url {
    let mut url = location.clone();
    url.query_pairs_mut().append_pair(PARAM, token);
    url
}

#[cfg(test)]
#[cfg(feature = "embedded")]
mod tests {
    use super::*;
    use crate::backends::local_keyring::LocalKeyRing;
    use crate::salesforce::sso::{self, LoginClaims};

    const ISS: &str = "https://links.example";
    const AUD: &str = "https://acme.platform.example";

    fn claims(now: i64) -> ContactClaims {
        ContactClaims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: "0035g00000AbCdEAAV".into(),
            site: "acme".into(),
            list: "invitees".into(),
            email: "ana@example.com".into(),
            iat: now,
            exp: now + CONTACT_REF_SECS,
            jti: "c1".into(),
            link: "n1".into(),
        }
    }

    #[test]
    fn a_reference_verifies_and_never_passes_for_a_login_token() {
        let dir = tempfile::tempdir().unwrap();
        let keys = LocalKeyRing::open(&dir.path().join("keys.json")).unwrap();
        let set = jws::jwks(&keys);
        let token = mint(&keys, &claims(1000));
        assert_eq!(verify(&set, &token, ISS, AUD, 1000), Ok(claims(1000)));
        assert_eq!(verify(&set, &token, ISS, "https://evil.example", 1000), Err(TokenError::WrongAudience));
        assert_eq!(verify(&set, &token, ISS, AUD, 1000 + CONTACT_REF_SECS), Err(TokenError::Expired));
        assert_eq!(sso::verify_login(&set, &token, ISS, AUD, 1000), Err(TokenError::WrongType));
        let login = LoginClaims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: "u-ana".into(),
            site: "acme".into(),
            org: "00D000000000001AAA".into(),
            sf_user: "005000000000001AAA".into(),
            email: "ana@example.com".into(),
            iat: 1000,
            exp: 1100,
            jti: "j".into(),
            next: "/".into(),
        };
        assert_eq!(verify(&set, &sso::mint_login(&keys, &login), ISS, AUD, 1000), Err(TokenError::WrongType));
    }

    #[test]
    fn append_keeps_the_targets_query() {
        let url = append(&"https://p.example/s/1?src=mail".parse().unwrap(), "a.b.c");
        assert_eq!(url.as_str(), "https://p.example/s/1?src=mail&flk_contact=a.b.c");
    }
}
