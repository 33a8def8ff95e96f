//! Run reports of export batches and historical exports: counts, and each failed row with its
//! error and event id.

use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::record;
use forcelink::domain::report::{RunKind, RunReport, RunStatus, TaskOutcome};
use forcelink::ports::{Cond, Store};
use time::OffsetDateTime;

use crate::ledger::EventError;

/// Failed rows kept in one report (the rest are counted; the ledger keeps every one).
pub const MAX_ROWS: usize = 500;

/// A report being filled.
#[derive(Debug, Clone)]
pub struct Tally {
    pub counts: Counts,
    pub failed_rows: Vec<TaskOutcome>,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        Self { counts: Counts::default(), failed_rows: Vec::new() }
    }

    /// Adds `n` to a count.
    pub fn add(&mut self, counter: Counter, n: u64) {
        if n > 0 {
            self.counts.add(counter, n);
        }
    }

    /// A count.
    pub fn get(&self, counter: Counter) -> u64 {
        self.counts.count(counter)
    }

    /// Records a row that failed for good.
    pub fn failed(&mut self, kind: &str, id: &str, err: &EventError) {
        self.add(Counter::Failed, 1);
        if self.failed_rows.len() < MAX_ROWS {
            self.failed_rows.push(TaskOutcome {
                name: format!("{kind}/{id}"),
                status: RunStatus::Failed,
                output: None,
                error: Some(if err.fields.is_empty() { err.to_string() } else { format!("{err} [{}]", err.fields.join(", ")) }),
            });
        }
    }

    /// Whether anything was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The report.
    pub fn report(
        &self,
        site: &str,
        kind: RunKind,
        name: &str,
        started_at: OffsetDateTime,
        now: OffsetDateTime,
        input: serde_json::Value,
    ) -> RunReport {
        let ok = self.get(Counter::Created) + self.get(Counter::Updated);
        let status = match (ok, self.get(Counter::Failed)) {
            (_, 0) => RunStatus::Succeeded,
            (0, _) => RunStatus::Failed,
            _ => RunStatus::Partial,
        };
        RunReport {
            site: site.into(),
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            name: name.into(),
            status,
            started_at,
            finished_at: Some(now),
            counts: self.counts.clone(),
            input,
            tasks: self.failed_rows.clone(),
            error: None,
            expires_at: None,
        }
    }
}

/// Saves a report; a failure is logged (the ledger still holds every outcome).
pub async fn save(store: &dyn Store, report: &RunReport) {
    if let Err(e) = record::save(store, report, Cond::Always).await {
        tracing::error!(site = %report.site, error = %e, "run report not saved");
    }
}
