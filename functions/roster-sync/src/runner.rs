//! Running one sync job: the lease, the job's state and checkpoint, the roster or inbound
//! pass, the run report, the next due time and the admin's emails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forcelink::Deps;
use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::record;
use forcelink::domain::report::{RunKind, RunReport, RunStatus, TaskOutcome};
use forcelink::domain::sync::{SyncJob, SyncKind};
use forcelink::ports::Cond;
use forcelink::salesforce::SalesforceClient;
use time::OffsetDateTime;

use crate::checkpoint::{self, Checkpoint};
use crate::error::SyncError;
use crate::roster::diff::Diff;
use crate::soql::Cursor;
use crate::state::{self, JobState};
use crate::{due, inbound, notify, reconcile, roster};

/// A run stops this long before its deadline, to save its checkpoint in time.
pub const SAFETY: Duration = Duration::from_secs(30);

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// A phase began (`fetching users`, `groups`…).
    Phase(String),
    /// Records the run expects in all.
    Total(u64),
    /// Records handled so far.
    Done(u64),
}

/// A progress callback.
pub type Progress = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// How to run a job.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Compute and return the diff; write nothing (no report, no state).
    pub dry_run: bool,
    /// Past the deactivation breaker.
    pub force: bool,
    /// A full pass even if an incremental one is due.
    pub full: bool,
    /// Stop (checkpoint) before this instant.
    pub deadline: Option<Instant>,
    /// Stop (checkpoint) after this many pages, as if the deadline had come (tests).
    pub max_pages: Option<u32>,
    pub progress: Option<Progress>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub report: RunReport,
    /// The roster's changes (empty for generic jobs).
    pub diff: Diff,
    /// The run stopped at its deadline and resumes at the next wake-up.
    pub interrupted: bool,
}

/// What a pass works with.
pub struct Ctx<'a> {
    pub deps: &'a Deps,
    pub job: &'a SyncJob,
    pub sf: SalesforceClient,
    pub opts: &'a RunOptions,
    pub now: OffsetDateTime,
    pub run_id: String,
    pub started_at: OffsetDateTime,
    /// Salesforce calls made by this invocation.
    pub calls: u64,
    pages: u32,
}

impl Ctx<'_> {
    /// Counts one Salesforce call (a page, a lookup, a describe).
    pub fn called(&mut self) {
        self.calls += 1;
    }

    /// Counts a page; true when the run must stop here and checkpoint.
    pub fn page_done(&mut self) -> bool {
        self.pages += 1;
        if self.opts.dry_run {
            return false;
        }
        self.opts.max_pages.is_some_and(|m| self.pages >= m) || self.opts.deadline.is_some_and(|d| Instant::now() + SAFETY >= d)
    }

    pub fn progress(&self, event: ProgressEvent) {
        if let Some(p) = &self.opts.progress {
            p(event);
        }
    }

    /// A checkpoint of this run.
    pub fn checkpoint(
        &self,
        full: bool,
        cursor: Option<Cursor>,
        counts: Counts,
        errors: Vec<String>,
        deferred: Vec<String>,
        invocations: u32,
    ) -> Checkpoint {
        Checkpoint {
            site: self.job.site.clone(),
            job: self.job.name.clone(),
            run_id: self.run_id.clone(),
            started_at: self.started_at,
            full,
            cursor,
            counts,
            errors,
            deferred,
            chunks: 0,
            invocations,
        }
    }
}

/// What a pass did.
#[derive(Debug, Default)]
pub struct Pass {
    pub counts: Counts,
    /// Items that failed (the run is `partial`).
    pub errors: Vec<String>,
    /// Things worth knowing (cycles broken…).
    pub notes: Vec<String>,
    /// The new watermark.
    pub cursor: Option<Cursor>,
    /// It was a full pass.
    pub full: bool,
    /// It stopped at the deadline and saved a checkpoint.
    pub interrupted: bool,
    pub diff: Diff,
}

/// Finds a job by site and name.
pub async fn find_job(deps: &Deps, site: &str, name: &str) -> Result<SyncJob, SyncError> {
    let sk = forcelink::domain::keys::sync_sk(name);
    record::load::<SyncJob>(deps.store.as_ref(), &forcelink::domain::keys::site_pk(site), &sk)
        .await?
        .map(|v| v.record)
        .ok_or_else(|| SyncError::UnknownJob { site: site.into(), job: name.into() })
}

/// Runs one job now (whether due or not).
pub async fn run_job(deps: &Deps, job: &SyncJob, opts: &RunOptions) -> Result<RunOutcome, SyncError> {
    let store = deps.store.as_ref();
    let now = deps.clock.now();
    let lease = if opts.dry_run {
        None
    } else {
        let ttl = opts.deadline.map_or(3_600, |d| d.saturating_duration_since(Instant::now()).as_secs() as i64 + 60);
        let holder = uuid::Uuid::now_v7().to_string();
        match due::acquire(store, &job.site, &job.name, &holder, now.unix_timestamp(), ttl).await? {
            Some(l) => Some(l),
            None => return Err(SyncError::Busy(format!("{}/{}", job.site, job.name))),
        }
    };
    let result = run_leased(deps, job, opts, now).await;
    if let Some(l) = lease {
        due::release(store, l).await;
    }
    result
}

async fn run_leased(deps: &Deps, job: &SyncJob, opts: &RunOptions, now: OffsetDateTime) -> Result<RunOutcome, SyncError> {
    let store = deps.store.as_ref();
    let mut st = state::load(store, &job.site, &job.name, now).await?;
    let definition = job.definition_hash();
    // A state from before definitions were hashed belongs to the job as it is.
    let redefined = st.definition.as_ref().is_some_and(|d| *d != definition);
    if redefined {
        st.watermark = None;
        st.last_full_at = None;
        if !opts.dry_run {
            checkpoint::clear(store, &job.site, &job.name).await?;
        }
    }
    st.definition = Some(definition);
    let resume = if opts.dry_run || redefined { None } else { checkpoint::load(store, &job.site, &job.name).await? };
    let (run_id, started_at) = match &resume {
        Some((c, _)) => (c.run_id.clone(), c.started_at),
        None => (uuid::Uuid::now_v7().to_string(), now),
    };
    let mut report = RunReport {
        site: job.site.clone(),
        id: run_id.clone(),
        kind: RunKind::Sync,
        name: job.name.clone(),
        status: RunStatus::Running,
        started_at,
        finished_at: None,
        counts: Counts::default(),
        input: serde_json::json!({ "job": job, "dry_run": opts.dry_run, "force": opts.force }),
        tasks: Vec::new(),
        error: None,
        expires_at: forcelink::domain::report::expiry(started_at, deps.settings.run_retention),
    };
    if redefined {
        report.tasks.push(TaskOutcome {
            name: "note".into(),
            status: RunStatus::Succeeded,
            output: Some("the job's definition changed: its watermark and checkpoint were reset (a full pass)".into()),
            error: None,
        });
    }
    let sf = match SalesforceClient::for_site(deps, &job.site, job.connection.as_deref()).await {
        Ok(sf) => sf,
        Err(e) => return finish_failed(deps, job, opts, &mut st, report, e.into()).await,
    };
    let mut ctx = Ctx { deps, job, sf, opts, now, run_id, started_at, calls: 0, pages: 0 };
    let pass = match &job.kind {
        SyncKind::Roster { .. } => roster::run(&mut ctx, &st, resume).await,
        SyncKind::Soql { .. } => inbound::run(&mut ctx, &st, resume).await,
        SyncKind::Reconcile { .. } => reconcile::run(&mut ctx, &st, resume).await,
    };
    let calls = ctx.calls;
    let pass = match pass {
        Ok(p) => p,
        Err(e) => {
            report.counts.set(Counter::ApiCalls, calls);
            if matches!(e, SyncError::Breaker { .. }) && !opts.dry_run {
                checkpoint::clear(store, &job.site, &job.name).await?;
            }
            return finish_failed(deps, job, opts, &mut st, report, e).await;
        }
    };
    report.counts = pass.counts.clone();
    report.counts.add(Counter::ApiCalls, calls);
    report.tasks.extend(pass.notes.iter().map(|n| TaskOutcome {
        name: "note".into(),
        status: RunStatus::Succeeded,
        output: Some(n.clone()),
        error: None,
    }));
    report.tasks.extend(pass.errors.iter().take(100).map(|e| TaskOutcome {
        name: "error".into(),
        status: RunStatus::Failed,
        output: None,
        error: Some(e.clone()),
    }));
    if opts.dry_run {
        report.status = if pass.errors.is_empty() { RunStatus::Succeeded } else { RunStatus::Partial };
        report.finished_at = Some(deps.clock.now());
        return Ok(RunOutcome { report, diff: pass.diff, interrupted: false });
    }
    if pass.interrupted {
        st.next_due = Some(now);
        st.last_status = Some(RunStatus::Running);
        st.last_run_id = Some(report.id.clone());
        st.last_run_started_at = Some(report.started_at);
        state::save(store, &st).await?;
        record::save(store, &report, Cond::Always).await?;
        tracing::info!(site = %job.site, job = %job.name, run = %report.id, "sync run checkpointed at its deadline; resumes at the next wake-up");
        return Ok(RunOutcome { report, diff: pass.diff, interrupted: true });
    }
    report.status = if pass.errors.is_empty() { RunStatus::Succeeded } else { RunStatus::Partial };
    report.finished_at = Some(deps.clock.now());
    if pass.cursor.is_some() {
        st.watermark = pass.cursor.clone();
    }
    if pass.full {
        st.last_full_at = Some(now);
    }
    st.next_due = next_due(job, now);
    st.last_status = Some(report.status);
    st.last_run_id = Some(report.id.clone());
    st.last_run_started_at = Some(report.started_at);
    state::save(store, &st).await?;
    checkpoint::clear(store, &job.site, &job.name).await?;
    record::save(store, &report, Cond::Always).await?;
    forcelink::metrics::run_finished(deps.clock.epoch_secs() * 1000, RunKind::Sync, report.status);
    if job.notify.on_success {
        notify::run_finished(deps, job, &report).await;
    }
    tracing::info!(site = %job.site, job = %job.name, run = %report.id, status = ?report.status, calls, "sync run finished");
    Ok(RunOutcome { report, diff: pass.diff, interrupted: false })
}

fn next_due(job: &SyncJob, now: OffsetDateTime) -> Option<OffsetDateTime> {
    job.every_minutes.map(|m| now + Duration::from_secs(u64::from(m) * 60))
}

async fn finish_failed(
    deps: &Deps,
    job: &SyncJob,
    opts: &RunOptions,
    st: &mut JobState,
    mut report: RunReport,
    e: SyncError,
) -> Result<RunOutcome, SyncError> {
    let now = deps.clock.now();
    report.status = RunStatus::Failed;
    report.error = Some(e.explained());
    report.finished_at = Some(now);
    if opts.dry_run {
        return Err(e);
    }
    tracing::warn!(site = %job.site, job = %job.name, run = %report.id, error = %e, "sync run failed");
    let store = deps.store.as_ref();
    st.next_due = next_due(job, now).or(Some(now + Duration::from_secs(3_600)));
    st.last_status = Some(RunStatus::Failed);
    st.last_run_id = Some(report.id.clone());
    st.last_run_started_at = Some(report.started_at);
    state::save(store, st).await?;
    record::save(store, &report, Cond::Always).await?;
    forcelink::metrics::run_finished(now.unix_timestamp() * 1000, RunKind::Sync, RunStatus::Failed);
    if e.is_credential_expiry() && job.notify.on_credential_expiry {
        notify::credentials_expired(deps, job, &report).await;
    } else if job.notify.on_failure {
        notify::run_finished(deps, job, &report).await;
    }
    Err(e)
}
