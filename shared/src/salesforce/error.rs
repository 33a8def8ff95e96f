//! Salesforce errors as one typed enum: REST error arrays, OAuth failures and transport
//! problems, each with [`SfError::is_transient`] and a plain-words [`SfError::admin_hint`].
//!
//! No variant carries a token: messages are Salesforce's own words or ours, and a source is
//! kept only where its text cannot quote a secret.

use serde::Deserialize;

use super::oauth::TokenError;
use crate::domain::record::RecordError;
use crate::ports::{BoxError, Chain, KeyError, MailError, StoreError};

/// Which request limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `TotalRequests`: the org's rolling 24 h API cap. Stop the org's work until it recovers.
    Daily,
    /// `ConcurrentPerOrgLongTxn` and friends: back off briefly and retry.
    Concurrent,
}

/// A failed Salesforce call.
#[derive(Debug, thiserror::Error)]
pub enum SfError {
    /// 401 `INVALID_SESSION_ID` even after a refresh.
    #[error("Salesforce session is not valid: {0}")]
    InvalidSession(String),
    /// 403 `REQUEST_LIMIT_EXCEEDED`.
    #[error("Salesforce request limit exceeded ({kind:?}): {message}")]
    RequestLimitExceeded { kind: LimitKind, message: String },
    /// `UNABLE_TO_LOCK_ROW`: another transaction holds the record.
    #[error("record locked in Salesforce: {0}")]
    UnableToLockRow(String),
    /// `INVALID_FIELD` (also `INVALID_FIELD_FOR_INSERT_UPDATE`, `NO_SUCH_COLUMN`…).
    #[error("invalid field: {message}")]
    InvalidField { message: String, fields: Vec<String> },
    /// `MALFORMED_QUERY`, `INVALID_QUERY_FILTER_OPERATOR`…
    #[error("malformed query: {0}")]
    MalformedQuery(String),
    /// `QUERY_TIMEOUT`: the query ran too long; narrow it.
    #[error("query timed out in Salesforce: {0}")]
    QueryTimeout(String),
    /// `INSUFFICIENT_ACCESS…`, `INVALID_TYPE` (object not visible), `NOT_FOUND` on an object.
    #[error("insufficient access: {0}")]
    InsufficientAccess(String),
    /// `API_DISABLED_FOR_ORG`, `API_CURRENTLY_DISABLED`, `FUNCTIONALITY_NOT_ENABLED`.
    #[error("API access is disabled: {0}")]
    ApiDisabled(String),
    /// The connection needs a new authorization (refresh token refused, revoked, user inactive…).
    #[error("the connection needs to be authorized again: {0}")]
    NeedsReauth(String),
    /// The connection is not connected yet (pending, revoked or unknown).
    #[error("{0}")]
    NotConnected(String),
    /// A query answer that is not `done` and has no `nextRecordsUrl`: the read is partial.
    #[error("the query answer ended without `done: true` or a next page ({0}): the read is incomplete")]
    IncompleteQuery(String),
    /// 5xx, timeouts, connection resets: retry with backoff.
    #[error("Salesforce is unavailable: {0}")]
    Transient(String),
    /// Anything else Salesforce said, with its error code.
    #[error("Salesforce error {code} (HTTP {status}): {message}")]
    Other { status: u16, code: String, message: String },
    /// No answer: a timeout, a refused or reset connection. Retry with backoff. (reqwest's
    /// text names the URL, which never carries a token in forcelink's calls.)
    #[error("Salesforce is unreachable: {}", Chain(.0))]
    Unreachable(#[source] reqwest::Error),
    /// A token call refused for a reason other than the grant, or answered unreadably.
    #[error("token call failed: {0}")]
    Token(#[source] TokenError),
    /// An answer (JSON, CSV) that does not parse; `what` names it.
    #[error("{what} does not parse: {source}")]
    Unreadable {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// A value (a request body, a token bundle) that does not encode as JSON; `what` names it.
    #[error("{what} does not encode as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The OAuth endpoints' URLs cannot be built from a login host.
    #[error("cannot build the OAuth {what} URL from {base}: {source}")]
    OAuthUrl {
        what: &'static str,
        base: String,
        #[source]
        source: url::ParseError,
    },
    /// Reading or writing forcelink's store failed.
    #[error("store: {0}")]
    Store(#[from] RecordError),
    /// Sealing or opening a secret failed; `what` names it (the tokens of a connection…).
    #[error("{what}: {source}")]
    Keys {
        what: String,
        #[source]
        source: KeyError,
    },
    /// A secret that opened but does not read back. Its parse error is dropped: it could quote the secret.
    #[error("{0}")]
    SecretUnreadable(String),
    /// The invitation email was not sent.
    #[error("invitation email: {0}")]
    Mail(#[source] MailError),
    /// A request or setting forcelink cannot act on (a bad name, a missing app, a URL outside
    /// the instance).
    #[error("{0}")]
    Invalid(String),
}

impl From<StoreError> for SfError {
    fn from(e: StoreError) -> Self {
        Self::Store(RecordError::Store(e))
    }
}

/// One entry of a Salesforce REST error array.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiErrorItem {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "errorCode")]
    pub error_code: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl SfError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Transient(_)
                | Self::IncompleteQuery(_)
                | Self::Unreachable(_)
                | Self::Token(TokenError::Transport(_))
                | Self::UnableToLockRow(_)
                | Self::RequestLimitExceeded { kind: LimitKind::Concurrent, .. }
        )
    }

    /// Whether forcelink's own side failed (its store, keys, mail or settings, or an answer it
    /// cannot read) rather than Salesforce refusing.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Token(_)
                | Self::Unreadable { .. }
                | Self::Encode { .. }
                | Self::OAuthUrl { .. }
                | Self::Store(_)
                | Self::Keys { .. }
                | Self::SecretUnreadable(_)
                | Self::Mail(_)
                | Self::Invalid(_)
        )
    }

    /// An answer named `what` that does not parse.
    pub fn unreadable(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unreadable { what, source: source.into() }
    }

    /// A keys failure on the secret named `what`.
    pub fn keys(what: impl Into<String>, source: KeyError) -> Self {
        Self::Keys { what: what.into(), source }
    }

    /// What an admin should do, in plain words, when it is theirs to fix.
    pub fn admin_hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::ApiDisabled(_) => {
                "API access is not enabled for the connected user or the org's edition: give the user the \"API Enabled\" permission (Enterprise, Unlimited and Developer editions have the API)."
            }
            Self::InsufficientAccess(_) => {
                "The connected user cannot see or change this object or field: grant access in its profile or a permission set (object and field-level security)."
            }
            Self::InvalidField { .. } => {
                "A field forcelink uses does not exist or is not visible to the connected user: check the field's API name in the mapping and its field-level security."
            }
            Self::MalformedQuery(_) => "The SOQL query is not valid: check the sync job's query in the site configuration.",
            Self::QueryTimeout(_) => {
                "The query ran too long in Salesforce: narrow it with a selective filter (an indexed field, a date range)."
            }
            Self::RequestLimitExceeded { kind: LimitKind::Daily, .. } => {
                "The org used up its daily API requests: forcelink pauses this org's work until usage drops; consider buying more API calls or lowering sync frequency."
            }
            Self::NeedsReauth(_) => {
                "Salesforce refused the saved authorization (revoked, expired after being idle, user deactivated, IP restrictions or app not installed): run `forcelink connect SITE --connection NAME` or send a new invitation."
            }
            Self::InvalidSession(_) => {
                "Salesforce refused the session right after a refresh: check the connected app's IP relaxation and session policies."
            }
            _ => return None,
        })
    }

    /// Maps an HTTP error answer (status and body) of the REST API.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let items: Vec<ApiErrorItem> =
            serde_json::from_slice(body).or_else(|_| serde_json::from_slice::<ApiErrorItem>(body).map(|i| vec![i])).unwrap_or_default();
        match items.into_iter().find(|i| !i.error_code.is_empty()) {
            Some(item) => Self::from_item(status, item),
            None if status >= 500 => Self::Transient(format!("HTTP {status}")),
            None if status == 401 => Self::InvalidSession(format!("HTTP {status}")),
            None => Self::Other { status, code: String::new(), message: snippet(body) },
        }
    }

    /// Maps one error entry (also used for per-record errors of collection calls).
    pub fn from_item(status: u16, item: ApiErrorItem) -> Self {
        let ApiErrorItem { message, error_code, fields } = item;
        match error_code.as_str() {
            "INVALID_SESSION_ID" => Self::InvalidSession(message),
            "REQUEST_LIMIT_EXCEEDED" => {
                let kind = if message.contains("TotalRequests") { LimitKind::Daily } else { LimitKind::Concurrent };
                Self::RequestLimitExceeded { kind, message }
            }
            "UNABLE_TO_LOCK_ROW" => Self::UnableToLockRow(message),
            "INVALID_FIELD" | "INVALID_FIELD_FOR_INSERT_UPDATE" | "NO_SUCH_COLUMN" | "INVALID_FIELD_WHEN_USING_TEMPLATE" => {
                Self::InvalidField { message, fields }
            }
            "MALFORMED_QUERY" | "INVALID_QUERY_FILTER_OPERATOR" | "INVALID_QUERY_LOCATOR" => Self::MalformedQuery(message),
            "QUERY_TIMEOUT" => Self::QueryTimeout(message),
            "API_DISABLED_FOR_ORG" | "API_CURRENTLY_DISABLED" | "FUNCTIONALITY_NOT_ENABLED" => Self::ApiDisabled(message),
            "INVALID_TYPE"
            | "INSUFFICIENT_ACCESS"
            | "INSUFFICIENT_ACCESS_OR_READONLY"
            | "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY" => Self::InsufficientAccess(message),
            code if code.starts_with("INSUFFICIENT_ACCESS") => Self::InsufficientAccess(message),
            "SERVER_UNAVAILABLE" | "UNKNOWN_EXCEPTION" => Self::Transient(message),
            _ if status >= 500 => Self::Transient(message),
            _ => Self::Other { status, code: error_code, message },
        }
    }
}

/// At most 200 characters of a body, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_documented_error_arrays() {
        type Check = fn(&SfError) -> bool;
        let cases: &[(u16, &str, Check)] = &[
            (401, r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#, |e| {
                matches!(e, SfError::InvalidSession(_))
            }),
            (403, r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#, |e| {
                matches!(e, SfError::RequestLimitExceeded { kind: LimitKind::Daily, .. }) && !e.is_transient()
            }),
            (403, r#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#, |e| {
                matches!(e, SfError::RequestLimitExceeded { kind: LimitKind::Concurrent, .. }) && e.is_transient()
            }),
            (400, r#"[{"message":"unable to obtain exclusive access","errorCode":"UNABLE_TO_LOCK_ROW"}]"#, |e| e.is_transient()),
            (400, r#"[{"message":"No such column 'Foo__c'","errorCode":"INVALID_FIELD","fields":["Foo__c"]}]"#, |e| {
                matches!(e, SfError::InvalidField { fields, .. } if fields == &["Foo__c"]) && e.admin_hint().is_some()
            }),
            (400, r#"[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]"#, |e| matches!(e, SfError::MalformedQuery(_))),
            (400, r#"[{"message":"too long","errorCode":"QUERY_TIMEOUT"}]"#, |e| matches!(e, SfError::QueryTimeout(_))),
            (403, r#"[{"message":"no","errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]"#, |e| matches!(e, SfError::InsufficientAccess(_))),
            (403, r#"[{"message":"API is not enabled for this Organization or Partner","errorCode":"API_DISABLED_FOR_ORG"}]"#, |e| {
                matches!(e, SfError::ApiDisabled(_)) && e.admin_hint().is_some_and(|h| h.contains("API Enabled"))
            }),
            (503, "<html>down</html>", |e| e.is_transient()),
            (400, r#"[{"message":"x","errorCode":"REQUIRED_FIELD_MISSING"}]"#, |e| {
                matches!(e, SfError::Other { code, .. } if code == "REQUIRED_FIELD_MISSING") && !e.is_transient()
            }),
        ];
        for (status, body, check) in cases {
            let e = SfError::from_response(*status, body.as_bytes());
            assert!(check(&e), "{status} {body} → {e:?}");
        }
    }
}
