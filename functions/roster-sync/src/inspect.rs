//! What an operator sees of a site's sync jobs (`forcelink sync status`): each job's
//! watermark, next due time, interrupted run and last result; and the reset that starts a job
//! over (`forcelink sync reset`).

use forcelink::Deps;
use forcelink::domain::keys;
use forcelink::domain::record;
use forcelink::domain::report::{RunReport, report_sk};
use forcelink::domain::sync::SyncJob;
use forcelink::ports::Query;
use serde::Serialize;

use crate::checkpoint::{self, Checkpoint};
use crate::error::SyncError;
use crate::state::{self, JobState};
use crate::{due, runner};

/// One job as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub job: SyncJob,
    pub state: JobState,
    /// An interrupted run, resumed at the next wake-up.
    pub checkpoint: Option<Checkpoint>,
    /// The last run's report.
    pub last_run: Option<RunReport>,
}

/// The status of `job`, or of every job of `site`.
pub async fn status(deps: &Deps, site: &str, job: Option<&str>) -> Result<Vec<JobStatus>, SyncError> {
    let store = deps.store.as_ref();
    let jobs: Vec<SyncJob> = match job {
        Some(name) => vec![runner::find_job(deps, site, name).await?],
        None => record::list(store, Query::prefix(keys::site_pk(site), keys::SYNC_PREFIX)).await?,
    };
    let now = deps.clock.now();
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let state = state::load(store, site, &job.name, now).await?;
        let checkpoint = checkpoint::load_record(store, site, &job.name).await?;
        let last_run = match (&state.last_run_id, state.last_run_started_at) {
            (Some(id), Some(at)) => {
                record::load::<RunReport>(store, &keys::runs_pk(site, keys::run_shard(id)), &report_sk(at, id)).await?.map(|v| v.record)
            }
            _ => None,
        };
        out.push(JobStatus { job, state, checkpoint, last_run });
    }
    Ok(out)
}

/// Starts `job` over: forgets its watermark, schedule and interrupted run, so the next run
/// is a full one, due now. Refused while a run holds the job's lease.
pub async fn reset(deps: &Deps, site: &str, job: &str) -> Result<(), SyncError> {
    let store = deps.store.as_ref();
    runner::find_job(deps, site, job).await?;
    let holder = uuid::Uuid::now_v7().to_string();
    let Some(lease) = due::acquire(store, site, job, &holder, deps.clock.epoch_secs(), 60).await? else {
        return Err(SyncError::Busy(format!("{site}/{job}")));
    };
    let result = async {
        checkpoint::clear(store, site, job).await?;
        state::clear(store, site, job).await
    }
    .await;
    due::release(store, lease).await;
    tracing::info!(site, job, "sync job reset: its next run starts over");
    result
}
