//! The signed tokens forcelink hands the platform: compact JWS (RFC 7515) signed with Ed25519
//! (`alg: EdDSA`, RFC 8037), so the platform verifies them with public keys only:
//! `GET /.well-known/jwks.json` serves them ([`jwks`]) with their key ids.
//!
//! Each signing key is derived from one of the key ring's HMAC keys
//! (`HMAC(k, "forcelink-sso-ed25519-v1")` as the Ed25519 seed), so it rotates with them and
//! needs no storage of its own; its key id is `sso-{hmac kid}`. The header's `typ` names the
//! kind of token (the SSO login token, a contact reference), and [`verify`] requires the kind
//! it is asked for, so no token passes for another kind.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::keyring::{KeyRing, Signature};

/// Longest token [`verify`] reads.
const MAX_TOKEN_LEN: usize = 4096;
/// What the HMAC key signs to make the Ed25519 seed.
const SEED_LABEL: &[u8] = b"forcelink-sso-ed25519-v1";
/// Key ids of the signing keys start with this.
const KID_PREFIX: &str = "sso-";

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token is another kind of token")]
    WrongType,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token is for another audience or issuer")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
}

/// One signing key.
struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
}

fn signing_key(seed: &Signature) -> Option<SigningKey> {
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed.tag).ok()?;
    Some(SigningKey { kid: format!("{KID_PREFIX}{}", seed.kid), pair })
}

/// The signing key of the current HMAC key.
fn current_key(keys: &dyn KeyRing) -> SigningKey {
    // A 32-byte seed is always a valid Ed25519 private key.
    signing_key(&keys.sign(SEED_LABEL)).unwrap_or_else(|| unreachable!("32-byte Ed25519 seed"))
}

/// Signs `claims` as a token of kind `typ` with the current key.
pub fn mint(keys: &dyn KeyRing, typ: &str, claims: &impl Serialize) -> String {
    let key = current_key(keys);
    let header = serde_json::json!({ "alg": "EdDSA", "typ": typ, "kid": key.kid });
    let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(serde_json::to_vec(claims).unwrap_or_default()));
    let sig = key.pair.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig.as_ref()))
}

/// The JSON Web Key Set that verifies the tokens (`/.well-known/jwks.json`): one key per HMAC
/// key that still verifies, the current one first, so tokens minted by a process that has not
/// seen a rotation yet keep verifying, and a retired key's tokens stop.
pub fn jwks(keys: &dyn KeyRing) -> serde_json::Value {
    let jwk = |key: SigningKey| {
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
        keys.signing_kids().iter().filter_map(|kid| keys.sign_with(kid, SEED_LABEL)).filter_map(|s| signing_key(&s)).map(jwk).collect();
    serde_json::json!({ "keys": published })
}

/// Checks a token of kind `typ` as the platform would, against a JWKS document: kind,
/// signature, and the registered claims `aud`, `iss` and `exp` (at `now`), then reads the claims.
pub fn verify<T: DeserializeOwned>(
    jwks: &serde_json::Value,
    typ: &str,
    token: &str,
    iss: &str,
    aud: &str,
    now: i64,
) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let decode = |s: &str| B64.decode(s).map_err(|_| TokenError::Malformed);
    let header: serde_json::Value = serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Malformed)?;
    if header["alg"] != "EdDSA" {
        return Err(TokenError::Malformed);
    }
    if header["typ"] != typ {
        return Err(TokenError::WrongType);
    }
    let kid = header["kid"].as_str().ok_or(TokenError::Malformed)?;
    let x = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid && k["crv"] == "Ed25519"))
        .and_then(|k| k["x"].as_str())
        .ok_or(TokenError::UnknownKey)?;
    let public = decode(x)?;
    UnparsedPublicKey::new(&ED25519, public).verify(format!("{h}.{p}").as_bytes(), &decode(s)?).map_err(|_| TokenError::BadSignature)?;
    let claims: serde_json::Value = serde_json::from_slice(&decode(p)?).map_err(|_| TokenError::Malformed)?;
    if claims["aud"] != aud || claims["iss"] != iss {
        return Err(TokenError::WrongAudience);
    }
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
        return Err(TokenError::Expired);
    }
    serde_json::from_value(claims).map_err(|_| TokenError::Malformed)
}

/// The origin (`scheme://host[:port]`) of a URL: the audience of the platform's tokens.
pub fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}
