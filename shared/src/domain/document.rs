//! A document: one record loaded by a generic inbound (SOQL) sync job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys;
use super::record::Record;

/// One loaded record, mapped. The default fields come first; `fields` holds the job's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub site: String,
    /// The sync job that loaded it.
    pub job: String,
    /// The record's stable id (by default its Salesforce `Id`).
    pub natural_id: String,
    /// The value of the job's date field.
    #[serde(default)]
    pub document_date: String,
    /// `Salesforce` unless mapped otherwise.
    pub feedback_provider: String,
    /// The record as loaded (redacted), or what the mapping says.
    #[serde(default)]
    pub source_value: String,
    /// The sObject type unless mapped otherwise.
    #[serde(default)]
    pub feedback_type: String,
    pub job_name: String,
    /// When it was loaded (RFC 3339).
    pub load_date: String,
    /// The job's custom mappings.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl Record for Document {
    fn pk(&self) -> String {
        keys::document_pk(&self.site)
    }
    fn sk(&self) -> String {
        format!("{}#{}", self.job, self.natural_id)
    }
}
