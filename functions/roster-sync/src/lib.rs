//! roster-sync: on a schedule, pulls the flagged Salesforce Users, their fields and manager
//! hierarchy into the platform's directory, and runs generic SOQL inbound jobs.
//!
//! Each wake-up ([`handle`]) runs the credential check when due (keep-alive refreshes and
//! warnings to admins, hourly), then the jobs that are due ([`due`]), one at a time, each under
//! a lease so overlapping wake-ups never run a job twice. A run ([`runner::run_job`]) reads
//! after the job's watermark in `(date field, Id)` order, checkpoints ([`checkpoint`]) when
//! the Lambda deadline nears and resumes at the next wake-up, and leaves a run report.
//!
//! - [`roster`]: Users → directory users and hierarchy groups.
//! - [`inbound`]: any SOQL query → documents.
//! - [`inspect`]: what `forcelink sync status` shows, and `sync reset`.
//! - [`reconcile`]: a workflow's record changes whose outbound messages Salesforce dropped.

pub mod checkpoint;
pub mod due;
pub mod error;
pub mod inbound;
pub mod inspect;
pub mod notify;
pub mod reconcile;
pub mod roster;
pub mod runner;
pub mod soql;
pub mod state;

use std::time::{Duration, Instant};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use forcelink::Deps;

pub use error::SyncError;
pub use runner::{ProgressEvent, RunOptions, RunOutcome, run_job};

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "roster-sync";

/// How long a wake-up may work when no deadline is given (the function's timeout is 300 s).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(290);

/// What one wake-up did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wake {
    /// Jobs run to the end.
    pub finished: Vec<String>,
    /// Jobs stopped at the deadline (they resume next time).
    pub checkpointed: Vec<String>,
    /// Jobs that failed (each left a report).
    pub failed: Vec<String>,
    /// Jobs another invocation was running.
    pub busy: Vec<String>,
}

impl Wake {
    /// The wake-up as the invocation's result: [`SyncError::JobsFailed`] when any job failed.
    pub fn into_result(self) -> Result<Wake, SyncError> {
        if self.failed.is_empty() { Ok(self) } else { Err(SyncError::JobsFailed(self.failed)) }
    }
}

/// Handles one scheduled wake-up: the hourly credential check when its turn has come
/// (`forcelink::salesforce::warnings::check_when_due`), then the sync jobs that are due;
/// fails when any of them failed.
pub async fn handle(deps: &Deps, event: EventBridgeEvent) -> Result<(), SyncError> {
    handle_until(deps, event, Instant::now() + DEFAULT_BUDGET).await?.into_result().map(|_| ())
}

/// As [`handle`], stopping in time for `deadline` (the Lambda invocation's).
pub async fn handle_until(deps: &Deps, _event: EventBridgeEvent, deadline: Instant) -> Result<Wake, SyncError> {
    if let Some(warnings) = forcelink::salesforce::warnings::check_when_due(deps).await {
        tracing::info!(warnings = warnings.len(), "credential check done");
    }
    let now = deps.clock.now();
    let mut wake = Wake::default();
    for (job, state) in due::all_jobs(deps.store.as_ref(), now).await? {
        if !due::is_due(&job, &state, now) {
            continue;
        }
        let name = format!("{}/{}", job.site, job.name);
        if Instant::now() + runner::SAFETY >= deadline {
            tracing::info!(job = %name, "no time left in this wake-up; the job waits for the next");
            break;
        }
        let opts = RunOptions { deadline: Some(deadline), ..RunOptions::default() };
        match run_job(deps, &job, &opts).await {
            Ok(o) if o.interrupted => wake.checkpointed.push(name),
            Ok(_) => wake.finished.push(name),
            Err(SyncError::Busy(_)) => wake.busy.push(name),
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "sync job failed");
                wake.failed.push(name);
            }
        }
    }
    Ok(wake)
}
