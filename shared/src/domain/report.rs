//! Run reports: every workflow run, export batch, sync run and historical export leaves one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys;
use super::record::Record;

/// What kind of run a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Workflow,
    Export,
    Historical,
    Sync,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    /// Some items failed, others succeeded.
    Partial,
    Failed,
    /// Conditions did not match; nothing ran.
    Skipped,
}

/// The outcome of one task or step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub name: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub site: String,
    pub id: String,
    pub kind: RunKind,
    /// The workflow, mapping or job the run belongs to.
    pub name: String,
    pub status: RunStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<OffsetDateTime>,
    /// Counts such as `created`, `updated`, `failed`, `api_calls`.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// The run's input (e.g. the notification's fields).
    #[serde(default)]
    pub input: serde_json::Value,
    #[serde(default)]
    pub tasks: Vec<TaskOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Record for RunReport {
    fn pk(&self) -> String {
        keys::runs_pk(&self.site)
    }
    fn sk(&self) -> String {
        let at = self.started_at.format(&Rfc3339).unwrap_or_default();
        format!("{at}#{}", self.id)
    }
}
