//! Run reports: every workflow run, export batch, sync run and historical export leaves one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::counts::Counts;
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
    pub counts: Counts,
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
        report_sk(self.started_at, &self.id)
    }
}

/// The sort key of run `id` started at `started_at` (reports sort by time in a site's partition).
pub fn report_sk(started_at: OffsetDateTime, id: &str) -> String {
    let at = started_at.format(&Rfc3339).unwrap_or_default();
    format!("{at}#{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::counts::Counter;

    /// A sync run's report as stored before the counters were typed.
    const STORED: &str = r#"{"site":"acme","id":"01937a4e-0000-7000-8000-000000000001","kind":"sync","name":"roster","status":"partial","started_at":"2026-11-30T10:00:00Z","finished_at":"2026-11-30T10:00:03Z","counts":{"added":12,"api_calls":3,"directory_writes":12,"errors":1,"fetched":13},"input":null,"tasks":[],"error":"1 record could not be taken in"}"#;

    #[test]
    fn a_stored_report_loads_and_stores_the_same_counts() {
        let report: RunReport = serde_json::from_str(STORED).unwrap();
        assert_eq!((report.counts.count(Counter::Added), report.counts.count(Counter::Fetched)), (12, 13));
        assert_eq!(report.counts.get(Counter::Deactivated), None);
        let stored: serde_json::Value = serde_json::from_str(STORED).unwrap();
        assert_eq!(serde_json::to_value(&report).unwrap()["counts"], stored["counts"]);
    }
}
