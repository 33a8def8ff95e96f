//! Small signed tokens for the OAuth side: sync-user invitations and connect tickets.
//! `b64(payload JSON) . b64(key id) . b64(HMAC-SHA256)`, all base64url, signed with the
//! `KeyRing`'s current HMAC key over `"forcelink-{purpose}-v1\n" ‖ payload`.
//!
//! The signed message starts with ASCII text, so it can never pass for a link token (whose
//! signed bytes start with a non-UTF-8 purpose byte), nor one purpose for another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::keyring::KeyRing;

/// Longest token [`verify`] decodes.
pub const MAX_TOKEN_LEN: usize = 2048;

/// What a signed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `GET /oauth/invite/{token}`: a sync user's invitation to authorize a connection.
    Invite,
    /// `GET /oauth/start?ticket=`: an operator's `forcelink connect` URL.
    Connect,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Invite => "invite",
            Purpose::Connect => "connect",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token has expired")]
    Expired,
}

/// Claims carry their own expiry.
pub trait Expiring {
    /// Epoch seconds from which the token is refused.
    fn expires_at(&self) -> i64;
}

fn message(purpose: Purpose, payload: &[u8]) -> Vec<u8> {
    let mut msg = format!("forcelink-{}-v1\n", purpose.label()).into_bytes();
    msg.extend_from_slice(payload);
    msg
}

/// Signs `claims` for `purpose`.
pub fn mint<T: Serialize>(keys: &dyn KeyRing, purpose: Purpose, claims: &T) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let sig = keys.sign(&message(purpose, &payload));
    format!("{}.{}.{}", B64.encode(&payload), B64.encode(sig.kid.as_bytes()), B64.encode(sig.tag))
}

/// [`verify`] after letting the key ring reload its keys if the token names a key it does not
/// know yet (a rotation after this process started; see `KeyRing::refresh_for`).
pub async fn verify_fresh<T: DeserializeOwned + Expiring>(
    keys: &dyn KeyRing,
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<T, SignedError> {
    if token.len() <= MAX_TOKEN_LEN
        && let Some(kid) = token.split('.').nth(1).and_then(|k| B64.decode(k).ok()).and_then(|k| String::from_utf8(k).ok())
    {
        keys.refresh_for(&kid).await;
    }
    verify(keys, purpose, token, now)
}

/// Checks a token's signature (constant time) and expiry at `now` (epoch seconds).
pub fn verify<T: DeserializeOwned + Expiring>(keys: &dyn KeyRing, purpose: Purpose, token: &str, now: i64) -> Result<T, SignedError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(SignedError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(p), Some(k), Some(t), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(SignedError::Malformed);
    };
    let decode = |s: &str| B64.decode(s).map_err(|_| SignedError::Malformed);
    let (payload, kid, tag) = (decode(p)?, decode(k)?, decode(t)?);
    let kid = String::from_utf8(kid).map_err(|_| SignedError::Malformed)?;
    if !keys.verify(&kid, &message(purpose, &payload), &tag) {
        return Err(SignedError::BadSignature);
    }
    let claims: T = serde_json::from_slice(&payload).map_err(|_| SignedError::Malformed)?;
    if claims.expires_at() <= now {
        return Err(SignedError::Expired);
    }
    Ok(claims)
}
