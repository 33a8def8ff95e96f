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
    /// An email's send attempt ended without a definite answer (a timeout, a reset after the
    /// request was written, a server error): it may or may not have gone out, and is not resent
    /// unless the workflow says so.
    Unknown,
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
    /// When the report expires (epoch seconds; see [`expiry`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// The expiry of a report of a run started at `started_at`, kept for `retention`
/// (`FORCELINK_RUN_RETENTION_DAYS`).
pub fn expiry(started_at: OffsetDateTime, retention: std::time::Duration) -> Option<i64> {
    Some(started_at.unix_timestamp().saturating_add(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX)))
}

impl Record for RunReport {
    fn pk(&self) -> String {
        keys::runs_pk(&self.site)
    }
    fn sk(&self) -> String {
        let at = self.started_at.format(&Rfc3339).unwrap_or_default();
        format!("{at}#{}", self.id)
    }
    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}
