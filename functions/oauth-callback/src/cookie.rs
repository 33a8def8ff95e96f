//! Binds a flow's `state` to the browser that started it (against login CSRF).
//!
//! `/oauth/start`, `/oauth/invite/…` and `/sso/login` set a `__Host-` cookie holding a hash of
//! the state; the callback refuses a state whose cookie is missing or different, so a callback
//! URL made in one browser cannot finish in another. The cookie's name carries the hash's
//! first characters, so flows started in several tabs do not overwrite each other.
//!
//! Connect flows use `SameSite=Lax` (the callback is a top-level navigation from Salesforce);
//! the SSO flow is framed by the Salesforce tab, a third-party context, so it uses
//! `SameSite=None; Partitioned` (CHIPS: the cookie lives in the tab's partition).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::flow::{Purpose, STATE_SECS};

const PREFIX: &str = "__Host-flk-";
/// Characters of the hash in the cookie's name; the rest is its value.
const NAME_CHARS: usize = 12;

fn digest(state: &str) -> String {
    B64.encode(Sha256::digest(format!("forcelink-state-cookie-v1\n{state}").as_bytes()))
}

fn attributes(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Connect => "Path=/; Secure; HttpOnly; SameSite=Lax",
        Purpose::Sso => "Path=/; Secure; HttpOnly; SameSite=None; Partitioned",
    }
}

fn cookie(state: &str, purpose: Purpose, max_age: i64) -> HeaderValue {
    let d = digest(state);
    let (name, value) = d.split_at(NAME_CHARS);
    let text = format!("{PREFIX}{name}={value}; Max-Age={max_age}; {}", attributes(purpose));
    // The digest is base64url and the rest fixed ASCII: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("__Host-flk-invalid=; Max-Age=0; Path=/; Secure"))
}

/// The `Set-Cookie` value that binds `state` to this browser for the flow's lifetime.
pub fn bind(state: &str, purpose: Purpose) -> HeaderValue {
    cookie(state, purpose, STATE_SECS)
}

/// The `Set-Cookie` value that removes the binding once the callback has used it.
pub fn clear(state: &str, purpose: Purpose) -> HeaderValue {
    cookie(state, purpose, 0)
}

/// Whether the request carries the cookie that binds `state` (compared in constant time).
pub fn matches(headers: &HeaderMap, state: &str) -> bool {
    let d = digest(state);
    let (name, value) = d.split_at(NAME_CHARS);
    let wanted = format!("{PREFIX}{name}");
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(n, v)| n == wanted && bool::from(v.as_bytes().ct_eq(value.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_cookie(set: &HeaderValue) -> HeaderMap {
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("other=1; {pair}")).unwrap());
        h
    }

    #[test]
    fn only_the_starting_browser_matches() {
        let set = bind("state-a", Purpose::Connect);
        let text = set.to_str().unwrap();
        assert!(text.starts_with("__Host-flk-"), "{text}");
        assert!(text.contains("Secure; HttpOnly; SameSite=Lax") && text.contains("Path=/"), "{text}");
        assert!(matches(&request_cookie(&set), "state-a"));
        assert!(!matches(&request_cookie(&set), "state-b"));
        assert!(!matches(&HeaderMap::new(), "state-a"));
        assert!(bind("s", Purpose::Sso).to_str().unwrap().contains("SameSite=None; Partitioned"));
        assert!(clear("s", Purpose::Sso).to_str().unwrap().contains("Max-Age=0"));
    }
}
