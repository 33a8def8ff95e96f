//! "Login with Salesforce": the short-lived signed login token forcelink hands the platform
//! at the site's `platform_sso_url`, and the `next` path check that prevents open redirects.

use serde::{Deserialize, Serialize};

use super::signed::{self, Expiring, Purpose, SignedError};
use crate::ports::keyring::KeyRing;

/// How long a login token works.
pub const LOGIN_TOKEN_SECS: i64 = 120;

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginClaims {
    pub site: String,
    /// The platform's directory user id.
    pub user: String,
    pub email: String,
    /// The 18-char Salesforce user and org ids.
    pub salesforce_user_id: String,
    pub org_id: String,
    /// Random: lets the platform refuse a second use.
    pub nonce: String,
    pub exp: i64,
}

impl Expiring for LoginClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// Signs a login token.
pub fn mint_login(keys: &dyn KeyRing, claims: &LoginClaims) -> String {
    signed::mint(keys, Purpose::Login, claims)
}

/// Checks a login token (the platform's side, or tests).
pub fn verify_login(keys: &dyn KeyRing, token: &str, now: i64) -> Result<LoginClaims, SignedError> {
    signed::verify(keys, Purpose::Login, token, now)
}

/// Whether `next` is a safe relative path on the platform: starts with one `/`, no scheme,
/// no `//` or `\` (protocol-relative tricks), no control characters, at most 1 KiB.
pub fn safe_next(next: &str) -> bool {
    next.len() <= 1024
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_the_platform() {
        for ok in ["/", "/surveys/1?x=y#z", "/a//b"] {
            assert!(safe_next(ok), "{ok}");
        }
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "evil", "", "/\n", "javascript:alert(1)"] {
            assert!(!safe_next(bad), "{bad}");
        }
    }
}
