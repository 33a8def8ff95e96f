//! A sync job: an inbound SOQL pull on a schedule. The roster sync is its preset.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys;
use super::record::Record;

/// An inbound job of a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncJob {
    pub site: String,
    pub name: String,
    pub kind: SyncKind,
    /// Minutes between runs; `None` for one-time runs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// What a sync job pulls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SyncKind {
    /// Salesforce Users → the platform's directory.
    Roster {
        /// SOQL condition selecting the users, e.g. `isQstreamUser__c = true`.
        #[serde(default = "default_filter")]
        filter: String,
        /// User fields that become directory tags (tag name → field).
        #[serde(default)]
        tag_fields: BTreeMap<String, String>,
        #[serde(default)]
        hierarchy: Hierarchy,
        /// Largest share of users one run may deactivate without `--force` (0–1).
        #[serde(default = "default_breaker")]
        max_deactivate_share: f64,
    },
    /// Any SOQL query → documents.
    Soql {
        query: String,
        /// The date field that drives increments; it must be selected by the query.
        date_field: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_version: Option<String>,
        /// Document field → template over the record's fields, on top of the defaults.
        #[serde(default)]
        mapping: BTreeMap<String, String>,
        #[serde(default)]
        record_limit: Option<u32>,
        #[serde(default)]
        duplicates: Duplicates,
    },
}

/// The roster's default user filter.
pub fn default_filter() -> String {
    "isQstreamUser__c = true".into()
}
/// The default share of users one run may deactivate.
pub fn default_breaker() -> f64 {
    0.10
}

/// Where the management hierarchy comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hierarchy {
    #[default]
    Manager,
    Role,
}

/// What a generic job does with a document it already has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    Skip,
    Replace,
    #[default]
    Update,
}

impl Record for SyncJob {
    fn pk(&self) -> String {
        keys::site_pk(&self.site)
    }
    fn sk(&self) -> String {
        format!("{}{}", keys::SYNC_PREFIX, self.name)
    }
}
