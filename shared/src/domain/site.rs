//! A site: one customer of the platform, and its settings.

use serde::{Deserialize, Serialize};

use super::connection::{Connection, ConnectionStatus};
use super::keys;
use super::record::{self, Record, RecordError, Versioned};
use crate::ports::store::Store;

/// One customer (tenant) of the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Short stable id, e.g. `acme` (lowercase letters, digits, `-`).
    pub id: String,
    pub name: String,
    /// The platform's base URL for this site.
    pub platform_url: String,
    /// Where a Salesforce login hands the platform its signed login token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_sso_url: Option<String>,
    #[serde(default)]
    pub tabs: Tabs,
    /// Every login and link goes through Salesforce.
    #[serde(default)]
    pub force_sso: bool,
    /// Gets warnings and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    /// The connection export and sync use when they name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_connection: Option<String>,
    /// The connection whose org alone signs people in ("Login with Salesforce"); the
    /// default connection when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_connection: Option<String>,
    /// SSO may match a directory user without a Salesforce id by email (then records the id).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sso_match_email: bool,
    /// The site's Salesforce org (18 chars), pinned in the site file: SSO signs in people of
    /// this org alone, with or without an authorized (sync) connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

impl Site {
    /// Loads a site by id.
    pub async fn load(store: &dyn Store, id: &str) -> Result<Option<Versioned<Site>>, RecordError> {
        record::load(store, &keys::site_pk(id), keys::SITE_SK).await
    }

    /// The connection SSO uses for its login host and app: `sso_connection`, else the default.
    pub fn sso_connection(&self) -> Option<&str> {
        self.sso_connection.as_deref().or(self.default_connection.as_deref())
    }

    /// The one org SSO signs people in from: the pinned `org_id`, else the org the SSO
    /// connection is authorized for (`None` until then).
    pub fn sso_org<'a>(&'a self, conn: &'a Connection) -> Option<&'a str> {
        let authorized = conn.status == ConnectionStatus::Connected && Some(conn.name.as_str()) == self.sso_connection();
        self.org_id.as_deref().or(conn.org_id.as_deref().filter(|_| authorized))
    }
}

/// The site's Salesforce tab URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tabs {
    /// `https://acme.lightning.force.com/lightning/n/Tab_Name`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lightning: Option<String>,
    /// `https://acme.my.salesforce.com/servlet/servlet.Integration?lid=01r…&ic=1`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classic: Option<String>,
}

/// The site's email sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

impl Record for Site {
    fn pk(&self) -> String {
        keys::site_pk(&self.id)
    }
    fn sk(&self) -> String {
        keys::SITE_SK.into()
    }
    fn gsi1(&self) -> Option<(String, String)> {
        Some((keys::SITES_PK.into(), self.id.clone()))
    }
}

/// Whether `id` is a valid site id.
pub fn valid_site_id(id: &str) -> bool {
    (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !id.starts_with('-')
}
