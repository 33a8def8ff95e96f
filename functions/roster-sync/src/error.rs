//! [`SyncError`]: why a wake-up or a run failed.

use forcelink::domain::record::RecordError;
use forcelink::ports::StoreError;
use forcelink::salesforce::SfError;

/// A sync run or wake-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Salesforce refused or failed (with the admin's hint when there is one).
    #[error("{0}")]
    Salesforce(#[from] SfError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("store: {0}")]
    Record(#[from] RecordError),
    /// An interrupted run's checkpoint lost one of its chunks of ids.
    #[error("checkpoint of {site}/{job}: chunk {chunk} is missing")]
    CheckpointChunkMissing { site: String, job: String, chunk: u32 },
    /// Taking reconciled changes in as notifications failed.
    #[error("intake: {0}")]
    Intake(#[from] forcelink::intake::PersistError),
    /// The job's configuration cannot run (an invalid query, an unknown field…).
    #[error("{0}")]
    Invalid(String),
    /// A redaction pattern that is not a valid regular expression.
    #[error("pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// The run would deactivate too many users; `--force` overrides.
    #[error(
        "breaker: the run would deactivate {would} of {active} active users ({share:.1}%, more than {max:.1}%); nothing was deactivated: check the filter, then run `forcelink sync run SITE JOB --force`"
    )]
    Breaker { would: u64, active: u64, share: f64, max: f64 },
    /// Another invocation holds the job's lease.
    #[error("sync job {0} is already running")]
    Busy(String),
    #[error("no sync job {job:?} on site {site:?}")]
    UnknownJob { site: String, job: String },
    /// A wake-up's jobs failed (each left a report): the invocation fails, so its alarm fires.
    #[error("{} sync job(s) failed: {}", .0.len(), .0.join(", "))]
    JobsFailed(Vec<String>),
}

impl SyncError {
    /// The message with the admin's hint, for reports and emails.
    pub fn explained(&self) -> String {
        match self {
            Self::Salesforce(e) => match e.admin_hint() {
                Some(hint) => format!("{e}. {hint}"),
                None => e.to_string(),
            },
            other => other.to_string(),
        }
    }

    /// Whether the connection's credentials stopped working.
    pub fn is_credential_expiry(&self) -> bool {
        matches!(self, Self::Salesforce(SfError::NeedsReauth(_) | SfError::InvalidSession(_)))
    }
}
