//! Which hosts are Salesforce's: where forcelink may send a client secret or an access token.
//!
//! A URL is trusted when it is `https` on a Salesforce domain (`salesforce.com`, `force.com`,
//! `cloudforce.com`, `database.com`, `salesforce.mil`) or on the host of a configured login URL
//! (the simulator's, in tests and `forcelink dev`). The token response's `instance_url` and
//! identity URL `id` are checked here before forcelink uses them, and its `issued_at` must be
//! recent.

use super::oauth::SalesforceFields;
use crate::settings::Settings;

/// Salesforce's own domains (a host must equal one or end with `.{domain}`).
const DOMAINS: &[&str] = &["salesforce.com", "force.com", "cloudforce.com", "database.com", "salesforce.mil"];
/// How far `issued_at` may be from now, either way (clock skew included).
pub const ISSUED_AT_SKEW_SECS: i64 = 600;

/// Why a token response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenUrlError {
    #[error("{field} is not an https URL on a Salesforce domain")]
    Untrusted { field: &'static str },
    #[error("issued_at is missing or not within {ISSUED_AT_SKEW_SECS} s of now")]
    Stale,
}

/// Whether `url` is an `https` URL on a Salesforce domain or a configured login host.
pub fn is_trusted(settings: &Settings, url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else { return false };
    let Some(host) = u.host_str().map(str::to_ascii_lowercase) else { return false };
    let salesforce = DOMAINS.iter().any(|d| host == *d || host.ends_with(&format!(".{d}")));
    let configured = [&settings.salesforce.login_url, &settings.salesforce.sandbox_url]
        .iter()
        .any(|l| l.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host)) && l.port_or_known_default() == u.port_or_known_default());
    u.scheme() == "https" && u.username().is_empty() && u.password().is_none() && (salesforce || configured)
}

/// Checks a token response's URLs and freshness (`now_secs`: epoch seconds).
pub fn check_token_response(settings: &Settings, fields: &SalesforceFields, now_secs: i64) -> Result<(), TokenUrlError> {
    if !is_trusted(settings, &fields.id) {
        return Err(TokenUrlError::Untrusted { field: "id" });
    }
    if !is_trusted(settings, &fields.instance_url) {
        return Err(TokenUrlError::Untrusted { field: "instance_url" });
    }
    let issued_ms: i64 = fields.issued_at.parse().map_err(|_| TokenUrlError::Stale)?;
    if (issued_ms / 1000 - now_secs).abs() > ISSUED_AT_SKEW_SECS {
        return Err(TokenUrlError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_lookup(|k| match k {
            "FORCELINK_SF_LOGIN_URL" => Some("https://127.0.0.1:8443".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn only_salesforce_and_configured_hosts_are_trusted() {
        let s = settings();
        for ok in [
            "https://login.salesforce.com/id/00D/005",
            "https://acme.my.salesforce.com",
            "https://acme--uat.sandbox.my.salesforce.com",
            "https://acme.lightning.force.com",
            "https://127.0.0.1:8443/id/00D/005",
        ] {
            assert!(is_trusted(&s, ok), "{ok}");
        }
        for bad in [
            "http://acme.my.salesforce.com",
            "https://salesforce.com.evil.example",
            "https://evilsalesforce.com",
            "https://127.0.0.1:9999/id",
            "https://user@acme.my.salesforce.com",
            "not a url",
            "",
        ] {
            assert!(!is_trusted(&s, bad), "{bad}");
        }
    }

    #[test]
    fn issued_at_must_be_recent() {
        let s = settings();
        let fields = |issued: &str| SalesforceFields {
            instance_url: "https://acme.my.salesforce.com".into(),
            id: "https://login.salesforce.com/id/00D/005".into(),
            issued_at: issued.into(),
            signature: String::new(),
            id_token: None,
        };
        assert_eq!(check_token_response(&s, &fields("1000000000000"), 1_000_000_000), Ok(()));
        assert_eq!(check_token_response(&s, &fields("1000000000000"), 1_000_000_000 + 3600), Err(TokenUrlError::Stale));
        assert_eq!(check_token_response(&s, &fields("soon"), 1_000_000_000), Err(TokenUrlError::Stale));
    }
}
