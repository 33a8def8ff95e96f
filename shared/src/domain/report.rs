//! Run reports: every workflow run, export batch, sync run and historical export leaves one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::counts::Counts;
use super::keys;
use super::record::{self, Record, RecordError};
use crate::ports::{Query, Store};

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
    pub counts: Counts,
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

impl RunReport {
    /// The report, set to expire `retention` after its run started.
    pub fn kept_for(mut self, retention: std::time::Duration) -> Self {
        self.expires_at = expiry(self.started_at, retention);
        self
    }
}

/// The expiry of a report of a run started at `started_at`, kept for `retention`
/// (`FORCELINK_RUN_RETENTION_DAYS`).
pub fn expiry(started_at: OffsetDateTime, retention: std::time::Duration) -> Option<i64> {
    Some(started_at.unix_timestamp().saturating_add(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX)))
}

impl Record for RunReport {
    fn pk(&self) -> String {
        keys::runs_pk(&self.site, keys::run_shard(&self.id))
    }
    fn sk(&self) -> String {
        report_sk(self.started_at, &self.id)
    }
    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}

/// A site's run reports, newest first: every shard's ([`keys::RUN_SHARDS`] queries), merged.
pub async fn list(store: &dyn Store, site: &str) -> Result<Vec<RunReport>, RecordError> {
    let mut items = Vec::new();
    for shard in 0..keys::RUN_SHARDS {
        items.extend(record::all_items(store, Query::prefix(keys::runs_pk(site, shard), "")).await?);
    }
    items.sort_by(|a, b| b.sk.cmp(&a.sk));
    items.iter().map(record::decode).collect()
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

    /// Reports land on several shards and still list newest first.
    #[cfg(feature = "embedded")]
    #[tokio::test]
    async fn spread_over_shards_and_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::backends::sqlite_store::SqliteStore::open(&dir.path().join("store.db")).unwrap();
        let start = OffsetDateTime::from_unix_timestamp(1_770_000_000).unwrap();
        let mut shards = std::collections::BTreeSet::new();
        for i in 0..40 {
            let report = RunReport {
                site: "acme".into(),
                id: format!("run-{i}"),
                kind: RunKind::Workflow,
                name: "w".into(),
                status: RunStatus::Succeeded,
                started_at: start + time::Duration::seconds(i),
                finished_at: None,
                counts: Default::default(),
                input: serde_json::Value::Null,
                tasks: Vec::new(),
                error: None,
                expires_at: None,
            };
            shards.insert(report.pk());
            record::save(&store, &report, crate::ports::Cond::Always).await.unwrap();
        }
        assert!(shards.len() > keys::RUN_SHARDS as usize / 2, "spread: {shards:?}");
        let listed = list(&store, "acme").await.unwrap();
        let ids: Vec<String> = listed.iter().map(|r| r.id.clone()).collect();
        let want: Vec<String> = (0..40).rev().map(|i| format!("run-{i}")).collect();
        assert_eq!(ids, want);
    }

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
