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
    /// Who hears about runs (the site's admin).
    #[serde(default)]
    pub notify: Notify,
}

impl SyncJob {
    /// A hash of what decides which records the job reads and what it makes of them: the
    /// connection, the object and query, filter, date field, fields and mapping; not its
    /// schedule, notifications or breaker. A job whose hash changed starts over.
    pub fn definition_hash(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let shape = match &self.kind {
            SyncKind::Roster { filter, tag_fields, hierarchy, .. } => {
                serde_json::json!({ "roster": { "filter": filter, "tag_fields": tag_fields, "hierarchy": hierarchy } })
            }
            SyncKind::Soql { query, date_field, api_version, mapping, filter, redact, substitute, .. } => serde_json::json!({ "soql": {
                "query": query, "date_field": date_field, "api_version": api_version, "mapping": mapping,
                "filter": filter, "redact": redact, "substitute": substitute,
            } }),
            SyncKind::Reconcile { workflow, filter, fields } => {
                serde_json::json!({ "reconcile": { "workflow": workflow, "filter": filter, "fields": fields } })
            }
        };
        let text = serde_json::json!({ "connection": self.connection, "kind": shape }).to_string();
        let digest = sha2::Sha256::digest(text.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12])
    }
}

/// When a sync job emails the site's admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    pub on_failure: bool,
    pub on_success: bool,
    /// When the connection's credentials stop working (needs a new authorization).
    pub on_credential_expiry: bool,
}

impl Default for Notify {
    fn default() -> Self {
        Self { on_failure: true, on_success: false, on_credential_expiry: true }
    }
}

/// A redaction rule of a generic job: matching text in the record's values is masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    pub kind: RedactKind,
    /// The regular expression, for `kind = "pattern"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The replacement, for `kind = "pattern"` (default `***`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// Only these fields (all text fields when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// What a redaction rule masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactKind {
    /// Email addresses: `a***@example.com`.
    Email,
    /// Payment card numbers (13–19 digits passing the Luhn check): last four kept.
    Card,
    /// A regular expression.
    Pattern,
}

/// A substitution rule of a generic job: a regular expression replaced in the record's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Substitution {
    pub pattern: String,
    /// The replacement (`$1` refers to a capture group).
    pub replace: String,
    /// Only these fields (all text fields when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
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
        /// Hours between full passes (which catch users who left the filter).
        #[serde(default = "default_full_every_hours")]
        full_every_hours: u32,
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
        /// An extra SOQL condition ANDed to the query's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        redact: Vec<Redaction>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        substitute: Vec<Substitution>,
    },
    /// The reconciliation poll of a workflow: finds the record changes whose outbound
    /// messages Salesforce dropped (it gives up after 24 h of retries) and runs the workflow
    /// for them, exactly as if the message had arrived.
    Reconcile {
        /// The workflow (of the same site) to run.
        workflow: String,
        /// The outbound message's rule criteria as a SOQL condition: only matching records
        /// are reconciled (e.g. `Survey_Opt_In__c = true`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        /// Fields to select beside the ones the workflow's conditions and tasks name.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
}

impl SyncKind {
    /// A short description for listings: `roster`, `soql`, `reconcile of workflow W`.
    pub fn describe(&self) -> String {
        match self {
            SyncKind::Roster { .. } => "roster".into(),
            SyncKind::Soql { .. } => "soql".into(),
            SyncKind::Reconcile { workflow, .. } => format!("reconcile of workflow {workflow}"),
        }
    }
}

/// The roster's default user filter.
pub fn default_filter() -> String {
    "isQstreamUser__c = true".into()
}
/// The default share of users one run may deactivate.
pub fn default_breaker() -> f64 {
    0.10
}

/// The default hours between full roster passes.
pub fn default_full_every_hours() -> u32 {
    24
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
        keys::sync_sk(&self.name)
    }
}
