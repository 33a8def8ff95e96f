//! A connection: one authorized Salesforce org of a site.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::keys;
use super::record::{self, Record, RecordError, Versioned};
use crate::ports::store::Store;

/// At most this many connections per site.
pub const MAX_CONNECTIONS: usize = 5;

/// Where the org's users log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// `login.salesforce.com`
    Production,
    /// `test.salesforce.com`
    Sandbox,
    /// The org's My Domain login URL, e.g. `https://acme.my.salesforce.com`.
    MyDomain(String),
}

impl Environment {
    /// Parses `production`, `sandbox` or an `https://` My Domain URL.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "production" => Some(Self::Production),
            "sandbox" => Some(Self::Sandbox),
            url if url.starts_with("https://") && url::Url::parse(url).is_ok_and(|u| u.host_str().is_some() && u.path() == "/") => {
                Some(Self::MyDomain(url.trim_end_matches('/').to_string()))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Production => f.write_str("production"),
            Self::Sandbox => f.write_str("sandbox"),
            Self::MyDomain(url) => f.write_str(url),
        }
    }
}

/// A connection's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Configured, not yet authorized.
    Pending,
    Connected,
    /// Refresh failed for good: someone must authorize again. Work for it is held.
    NeedsReauth,
    /// Removed by an operator; tokens revoked.
    Revoked,
}

/// The Salesforce user who authorized the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizingUser {
    /// 18-char `005…` id.
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A customer's own client app for this connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientApp {
    pub client_id: String,
    /// The client secret, sealed by the `KeyRing` (never plaintext).
    pub client_secret_sealed: String,
}

/// One authorized (or to-be-authorized) org of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub site: String,
    /// Unique within the site, e.g. `production`, `uat`.
    pub name: String,
    pub environment: Environment,
    pub status: ConnectionStatus,
    /// 18-char `00D…` org id, once connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<AuthorizingUser>,
    /// The email of the person asked to authorize (the sync user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_user_email: Option<String>,
    /// The last invitation to authorize: to whom, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited: Option<Invited>,
    /// The only org (18 chars) allowed to authorize this connection, if the site file pins one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_org_id: Option<String>,
    /// Access and refresh tokens, sealed by the `KeyRing` (never plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientApp>,
    /// Date the credential is expected to stop working, if the customer set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<Date>,
    /// Days before `expires_on` to warn (1–100).
    #[serde(default = "default_warn_days")]
    pub warn_days: u8,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_verified_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_refreshed_at: Option<OffsetDateTime>,
    /// API usage `(used, max)` from the latest `Sforce-Limit-Info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_usage: Option<(u64, u64)>,
    /// What forcelink noticed about the credential (for warnings before it breaks).
    #[serde(default, skip_serializing_if = "CredentialHealth::is_clear")]
    pub health: CredentialHealth,
}

/// Signs that a connection's credential may break soon; see `forcelink::salesforce::warnings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialHealth {
    /// `invalid_grant` answers to refreshes in a row (reset by a good refresh or a new authorization).
    #[serde(default)]
    pub invalid_grants: u32,
    /// The org id changed (a sandbox refresh), most recent change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_changed: Option<Change>,
    /// The instance URL changed (an org migration or a sandbox refresh), most recent change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_changed: Option<Change>,
    /// Why Salesforce last refused the credential, named (cleared by a good refresh or a new
    /// authorization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<CredentialProblem>,
    /// When each kind of warning was last emailed, so the admin is told once a week, not hourly.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub warned: std::collections::BTreeMap<String, i64>,
}

/// Why Salesforce refuses a connection's credential; each has its own fix for the customer's
/// admin (`forcelink::salesforce::health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialProblem {
    /// The client app is not installed in the org (`OAUTH_EC_APP_NOT_FOUND`).
    AppNotInstalled,
    /// The org's IP restrictions refuse forcelink's addresses.
    IpRestricted,
    /// The authorizing user is deactivated or frozen.
    UserInactive,
    /// The refresh token was revoked (by an admin, by reuse under rotation) or expired idle.
    TokenRevoked,
    /// The API is not enabled for the user or the org's edition.
    ApiDisabled,
    /// Refused for a reason Salesforce does not name.
    Refused,
}

impl CredentialHealth {
    /// Nothing noticed.
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }
}

/// A value that changed, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub from: String,
    pub to: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn default_warn_days() -> u8 {
    14
}

/// An invitation to authorize a connection, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invited {
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Connection {
    /// Loads a site's connection by name.
    pub async fn load(store: &dyn Store, site: &str, name: &str) -> Result<Option<Versioned<Connection>>, RecordError> {
        record::load(store, &keys::site_pk(site), &keys::connection_sk(name)).await
    }

    /// A pending connection.
    pub fn pending(site: &str, name: &str, environment: Environment) -> Self {
        Self {
            site: site.into(),
            name: name.into(),
            environment,
            status: ConnectionStatus::Pending,
            org_id: None,
            instance_url: None,
            user: None,
            sync_user_email: None,
            invited: None,
            expected_org_id: None,
            tokens_sealed: None,
            client: None,
            expires_on: None,
            warn_days: default_warn_days(),
            last_verified_at: None,
            last_refreshed_at: None,
            api_usage: None,
            health: CredentialHealth::default(),
        }
    }
}

impl Record for Connection {
    fn pk(&self) -> String {
        keys::site_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::connection_sk(&self.name)
    }
    fn gsi1(&self) -> Option<(String, String)> {
        self.org_id.as_ref().map(|org| (keys::org_index(org), format!("{}#{}", self.site, self.name)))
    }
}
