//! An export mapping: which Salesforce object a kind of platform event becomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys;
use super::record::Record;

/// How one kind of platform event maps onto a Salesforce object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportMapping {
    pub site: String,
    /// The event kind, e.g. `result`, `survey_response`.
    pub kind: String,
    /// Target sObject, e.g. `Learning_Result__c`.
    pub object: String,
    /// The External ID field records are upserted by (never inserted).
    pub external_id_field: String,
    /// Salesforce field → where its value comes from.
    pub fields: BTreeMap<String, FieldSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

/// The source of one mapped field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldSource {
    /// A template over the event's fields: `{score}`, or `{first} {last}`.
    Template(String),
    /// A fixed value.
    Constant { constant: serde_json::Value },
    /// A date or datetime field reformatted: `date` (YYYY-MM-DD) or `datetime` (ISO 8601 UTC).
    Date { from: String, format: DateFormat },
    /// A parent record found by one of its external ids, e.g. a Contact by `Email`.
    Lookup {
        /// The relationship name on the target object, e.g. `Contact__r`.
        lookup: String,
        /// The parent's object, e.g. `Contact`.
        object: String,
        /// The parent's External ID (or unique) field, e.g. `Email`.
        by: String,
        /// The event field holding the value.
        from: String,
    },
}

/// Date formats Salesforce accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateFormat {
    Date,
    Datetime,
}

impl Record for ExportMapping {
    fn pk(&self) -> String {
        keys::site_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::export_sk(&self.kind)
    }
}

/// Schema tag of the control message that releases a site's held export events, e.g. after
/// the site connects: `{"schema":"forcelink.control/v1","action":"flush","site":"acme"}`.
pub const CONTROL_SCHEMA: &str = "forcelink.control/v1";

/// The export-queue message body that asks the export pusher to release `site`'s held events.
pub fn flush_message(site: &str) -> String {
    serde_json::json!({ "schema": CONTROL_SCHEMA, "action": "flush", "site": site }).to_string()
}
