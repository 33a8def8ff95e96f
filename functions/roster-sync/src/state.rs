//! [`JobState`]: a sync job's schedule record — when it is due next, its watermark (and the
//! job definition it belongs to), when its last full pass ran, and its last run.

use forcelink::domain::keys;
use forcelink::domain::record::{self, Record};
use forcelink::domain::report::RunStatus;
use forcelink::ports::{Cond, Store};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::SyncError;
use crate::soql::Cursor;

/// A job's schedule and progress, kept between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub site: String,
    pub job: String,
    /// When the job runs next; `None` for a one-time job that has run.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_due: Option<OffsetDateTime>,
    /// The last record of the last completed run, in `(date field, Id)` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Cursor>,
    /// When the last full roster pass completed.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_full_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<RunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_id: Option<String>,
    /// When the last run started (its report's key, with `last_run_id`).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_run_started_at: Option<OffsetDateTime>,
    /// The hash of the job's definition the watermark belongs to
    /// ([`forcelink::domain::SyncJob::definition_hash`]): a changed definition starts over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

impl JobState {
    /// A job never run: due now.
    pub fn new(site: &str, job: &str, now: OffsetDateTime) -> Self {
        Self {
            site: site.into(),
            job: job.into(),
            next_due: Some(now),
            watermark: None,
            last_full_at: None,
            last_status: None,
            last_run_id: None,
            last_run_started_at: None,
            definition: None,
        }
    }
}

impl Record for JobState {
    fn pk(&self) -> String {
        keys::sync_state_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::sync_job_sk(&self.job)
    }
}

/// Loads a job's state (a fresh one, due now, if it never ran).
pub async fn load(store: &dyn Store, site: &str, job: &str, now: OffsetDateTime) -> Result<JobState, SyncError> {
    Ok(record::load::<JobState>(store, &keys::sync_state_pk(site), &keys::sync_job_sk(job))
        .await?
        .map(|v| v.record)
        .unwrap_or_else(|| JobState::new(site, job, now)))
}

/// Deletes a job's state: its next run starts over (due now, no watermark).
pub async fn clear(store: &dyn Store, site: &str, job: &str) -> Result<(), SyncError> {
    store.delete(&keys::sync_state_pk(site), &keys::sync_job_sk(job), Cond::Always).await?;
    Ok(())
}

/// Saves a job's state (the lease holder is its only writer).
pub async fn save(store: &dyn Store, state: &JobState) -> Result<(), SyncError> {
    record::save(store, state, Cond::Always).await?;
    Ok(())
}
