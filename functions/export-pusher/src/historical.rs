//! Historical export: every event recorded for a site (optionally since a date) replayed into
//! Salesforce through Bulk API 2.0 upsert jobs, one per object (and per `bulk_job_rows` rows).
//!
//! A checkpoint in the store records each job's step (created, uploaded, closed, results
//! applied); a rerun after an interruption finishes the open jobs and skips the records this
//! run already exported. Results are matched by external id. Permanent row failures go to the
//! ledger (failed, replayable), the dead-letter queue and the report; transient ones and
//! unprocessed rows go to the continuous export queue. The org's API budget is checked before
//! each job: past the threshold, or paused, the run stops and can be resumed later.

use std::collections::{BTreeMap, HashMap};

use forcelink::Deps;
use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::export::ExportMapping;
use forcelink::domain::report::{RunKind, RunReport};
use forcelink::domain::site::Site;
use forcelink::domain::{ConnectionStatus, keys, record};
use forcelink::ports::{Cond, Item, Query, Store};
use forcelink::salesforce::{LimitKind, SalesforceClient, SfError, session};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::bulk::{self, Results, Table};
use crate::collections;
use crate::event;
use crate::ledger::{self, Entry, EventError, State};
use crate::report::Tally;
use crate::tuning::Tuning;
use crate::{budget, crash, replay, transform};

/// A record as CSV (column, cell) pairs.
type Cells = Vec<(String, String)>;

/// Sort key of a site's historical checkpoint (in the ledger partition).
pub const CHECKPOINT_SK: &str = "HIST#CHECKPOINT";

/// Where a historical run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub run_id: String,
    pub site: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub jobs: Vec<JobStep>,
    pub rows_total: u64,
    pub rows_done: u64,
    pub counts: Counts,
    #[serde(default)]
    pub failed_rows: Vec<forcelink::domain::TaskOutcome>,
    pub done: bool,
}

/// One Bulk job of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStep {
    pub object: String,
    pub ext_field: String,
    /// Event kinds whose records the job carries (to find ledger entries by key).
    pub kinds: Vec<String>,
    pub job_id: String,
    pub rows: u64,
    /// Epoch ms when the job was built: ledger entries changed later hold newer events.
    pub built_ms: i64,
    pub step: Step,
}

/// A job's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Created,
    Uploaded,
    Closed,
    Applied,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every job applied; the report.
    Done(Box<RunReport>),
    /// Stopped for the org's API budget or a pause; resume later.
    Paused { reason: String, checkpoint: Box<Checkpoint> },
}

/// Progress display hooks (the CLI draws a bar).
pub trait Progress: Send + Sync {
    fn total(&self, _rows: u64) {}
    fn advance(&self, _rows: u64) {}
    fn note(&self, _text: &str) {}
}

/// No display.
pub struct Quiet;
impl Progress for Quiet {}

/// Failures that stop a run (its checkpoint stays for a resume).
#[derive(Debug, thiserror::Error)]
pub enum HistoricalError {
    #[error("store: {0}")]
    Store(#[from] forcelink::domain::RecordError),
    #[error("store: {0}")]
    StoreItem(#[from] forcelink::ports::StoreError),
    #[error("queue: {0}")]
    Queue(#[from] forcelink::ports::QueueError),
    #[error("Salesforce: {0}")]
    Salesforce(#[from] SfError),
    /// The site, its mappings or connections cannot run an export (a message for the admin).
    #[error("{0}")]
    Setup(String),
    #[error("checkpoint does not encode: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("CSV: {0}")]
    Csv(#[source] csv::Error),
}

/// The site's checkpoint, if any.
pub async fn checkpoint(store: &dyn Store, site: &str) -> Result<Option<Checkpoint>, forcelink::domain::RecordError> {
    match store.get(&keys::export_ledger_pk(site), CHECKPOINT_SK).await? {
        Some(item) => Ok(Some(record::decode(&item)?)),
        None => Ok(None),
    }
}

async fn save_checkpoint(store: &dyn Store, cp: &Checkpoint) -> Result<(), HistoricalError> {
    let body = serde_json::to_string(cp).map_err(HistoricalError::Encode)?;
    store.put(Item::new(keys::export_ledger_pk(&cp.site), CHECKPOINT_SK, body), Cond::Always).await?;
    Ok(())
}

/// Runs (or resumes) the historical export of `site`.
pub async fn run(
    deps: &Deps,
    tuning: &Tuning,
    site: &str,
    since: Option<OffsetDateTime>,
    progress: &dyn Progress,
) -> Result<Outcome, HistoricalError> {
    let store = deps.store.as_ref();
    let pk = keys::site_pk(site);
    let site_rec = Site::load(store, site).await?.map(|v| v.record);
    let site_rec = site_rec.ok_or_else(|| HistoricalError::Setup(format!("no site {site:?}: apply a configuration first")))?;
    let mappings: Vec<ExportMapping> = record::list(store, Query::prefix(&pk, keys::EXPORT_PREFIX)).await?;
    if mappings.is_empty() {
        return Err(HistoricalError::Setup(format!("site {site} has no export mappings")));
    }
    let conn_name = site_rec.default_connection.clone();
    let mut cp = match checkpoint(store, site).await? {
        Some(cp) if !cp.done => {
            progress.note(&format!("resuming run {} ({} of {} rows done)", cp.run_id, cp.rows_done, cp.rows_total));
            cp
        }
        _ => Checkpoint {
            run_id: uuid::Uuid::now_v7().to_string(),
            site: site.into(),
            since,
            started_at: deps.clock.now(),
            jobs: Vec::new(),
            rows_total: 0,
            rows_done: 0,
            counts: Counts::default(),
            failed_rows: Vec::new(),
            done: false,
        },
    };
    let mut tally = Tally { counts: cp.counts.clone(), failed_rows: cp.failed_rows.clone() };
    let started_ms = (cp.started_at.unix_timestamp_nanos() / 1_000_000) as i64;

    // Which connection serves each mapping; the run needs them live.
    let mut clients: HashMap<String, (SalesforceClient, String)> = HashMap::new();
    for m in &mappings {
        let name = m
            .connection
            .clone()
            .or_else(|| conn_name.clone())
            .ok_or_else(|| HistoricalError::Setup(format!("mapping {:?} names no connection and the site has no default", m.kind)))?;
        if clients.contains_key(&name) {
            continue;
        }
        let conn = session::load(deps, site, &name).await?.record;
        if conn.status != ConnectionStatus::Connected {
            return Err(HistoricalError::Setup(format!("connection {site}/{name} is not connected: events stay held until it is")));
        }
        let org = conn.org_id.clone().unwrap_or_else(|| format!("{site}/{name}"));
        clients.insert(name.clone(), (SalesforceClient::new(deps, site, &name), org));
    }
    let client_of = |m: &ExportMapping| m.connection.clone().or_else(|| conn_name.clone()).and_then(|n| clients.get(&n).cloned());

    // 1. Finish the jobs a previous attempt left open.
    let kinds_by_object: HashMap<(String, String), Vec<String>> = mappings.iter().fold(HashMap::new(), |mut acc, m| {
        acc.entry((m.object.clone(), m.external_id_field.clone())).or_default().push(m.kind.clone());
        acc
    });
    for i in 0..cp.jobs.len() {
        if cp.jobs[i].step == Step::Applied {
            continue;
        }
        let job = cp.jobs[i].clone();
        let Some(m) = mappings.iter().find(|m| m.object == job.object && m.external_id_field == job.ext_field) else { continue };
        let Some((client, org)) = client_of(m) else { continue };
        if let Some(reason) = over_budget(deps, tuning, &client, &org).await {
            save_state(store, &mut cp, &tally).await?;
            return Ok(Outcome::Paused { reason, checkpoint: Box::new(cp) });
        }
        if job.step == Step::Created {
            // The upload may be partial: start that job over with the records left.
            let _ = bulk::retrying(|| bulk::set_state(&client, &job.job_id, "Aborted")).await;
            tally.add(Counter::ApiCalls, 1);
            cp.rows_total = cp.rows_total.saturating_sub(job.rows);
            cp.jobs[i].step = Step::Applied;
            cp.jobs[i].rows = 0;
            save_state(store, &mut cp, &tally).await?;
            continue;
        }
        finish_job(deps, tuning, &client, &org, &mut cp, i, &mut tally, progress).await?;
    }

    // 2. Build jobs from the ledger: every record not yet exported by this run.
    let mut groups: BTreeMap<(String, String), Vec<(Entry, Cells)>> = BTreeMap::new();
    // Taken before the ledger is read: an entry changed since then may be newer than its row.
    let built_ms = deps.clock.now().unix_timestamp_nanos() as i64 / 1_000_000;
    let mut after = None;
    loop {
        let (entries, next) = ledger::page(store, site, after, 1000).await?;
        for e in entries {
            if cp.since.is_some_and(|s| e.occurred_at < s) {
                continue;
            }
            if e.state == State::Exported && e.exported == Some(e.occurred_at) && e.updated_ms >= started_ms && !cp.jobs.is_empty() {
                continue;
            }
            let Some(m) = mappings.iter().find(|m| m.kind == e.kind) else {
                tally.add(Counter::NoMapping, 1);
                continue;
            };
            let ev = match event::parse_event(e.event.clone()) {
                Ok(ev) => ev,
                Err(inv) => {
                    tally.add(Counter::Invalid, 1);
                    tracing::error!(reason = %inv.reason, "ledger event does not parse; skipped");
                    continue;
                }
            };
            match transform::record(m, &ev) {
                Ok(rec) => groups.entry((m.object.clone(), m.external_id_field.clone())).or_default().push((e, transform::columns(&rec))),
                Err(err) => {
                    let err = collections::error("MAPPING_ERROR", err.to_string());
                    fail_entry(deps, store, e, err, &mut tally).await;
                }
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let new_rows: u64 = groups.values().map(|v| v.len() as u64).sum();
    cp.rows_total = cp.rows_done + new_rows;
    progress.total(cp.rows_total);
    progress.advance(cp.rows_done);
    for ((object, ext), rows) in groups {
        let Some(m) = mappings.iter().find(|m| m.object == object && m.external_id_field == ext) else { continue };
        let Some((client, org)) = client_of(m) else { continue };
        let kinds = kinds_by_object.get(&(object.clone(), ext.clone())).cloned().unwrap_or_default();
        for chunk in rows.chunks(tuning.bulk_job_rows) {
            if let Some(reason) = over_budget(deps, tuning, &client, &org).await {
                save_state(store, &mut cp, &tally).await?;
                return Ok(Outcome::Paused { reason, checkpoint: Box::new(cp) });
            }
            let cells: Vec<Vec<(String, String)>> = chunk.iter().map(|(_, c)| c.clone()).collect();
            let csv = bulk::csv(&cells).map_err(HistoricalError::Csv)?;
            let job = match call(deps, tuning, &org, &mut tally, || bulk::create(&client, &object, &ext)).await {
                Ok(j) => j,
                Err(Stopped(reason)) => {
                    save_state(store, &mut cp, &tally).await?;
                    return Ok(Outcome::Paused { reason, checkpoint: Box::new(cp) });
                }
            };
            let i = cp.jobs.len();
            cp.jobs.push(JobStep {
                object: object.clone(),
                ext_field: ext.clone(),
                kinds: kinds.clone(),
                job_id: job.id.clone(),
                rows: chunk.len() as u64,
                built_ms,
                step: Step::Created,
            });
            save_state(store, &mut cp, &tally).await?;
            progress.note(&format!("job {} for {} {object} records", job.id, chunk.len()));
            if let Err(Stopped(reason)) = call(deps, tuning, &org, &mut tally, || bulk::upload(&client, &job.id, csv.clone())).await {
                save_state(store, &mut cp, &tally).await?;
                return Ok(Outcome::Paused { reason, checkpoint: Box::new(cp) });
            }
            cp.jobs[i].step = Step::Uploaded;
            save_state(store, &mut cp, &tally).await?;
            crash::point("bulk_after_upload");
            finish_job(deps, tuning, &client, &org, &mut cp, i, &mut tally, progress).await?;
        }
    }
    cp.done = true;
    save_state(store, &mut cp, &tally).await?;
    let report = tally.report(
        site,
        RunKind::Historical,
        "historical",
        cp.started_at,
        deps.clock.now(),
        serde_json::json!({
            "run_id": cp.run_id,
            "since": cp.since.and_then(|s| s.format(&time::format_description::well_known::Rfc3339).ok()),
            "jobs": cp.jobs.iter().map(|j| serde_json::json!({"object": j.object, "job_id": j.job_id, "rows": j.rows})).collect::<Vec<_>>(),
        }),
    )
    .kept_for(deps.settings.run_retention);
    crate::report::save(store, &report).await;
    Ok(Outcome::Done(Box::new(report)))
}

async fn save_state(store: &dyn Store, cp: &mut Checkpoint, tally: &Tally) -> Result<(), HistoricalError> {
    cp.counts = tally.counts.clone();
    cp.failed_rows = tally.failed_rows.clone();
    save_checkpoint(store, cp).await
}

/// The reason to stop now, if the org is paused or past its budget threshold.
async fn over_budget(deps: &Deps, tuning: &Tuning, client: &SalesforceClient, org: &str) -> Option<String> {
    if let Ok(Some(p)) = budget::paused(deps.store.as_ref(), org).await {
        return Some(format!("org {org} is paused until {} ({})", p.until, p.reason));
    }
    let mut usage = client.api_usage();
    if budget::share(usage).is_some_and(|s| s >= tuning.budget_share) {
        // The last reading may be old: one `limits` call refreshes it (its answer's header).
        if client.get_json::<serde_json::Value>("limits").await.is_ok() {
            usage = client.api_usage();
        }
    }
    match budget::share(usage) {
        Some(s) if s >= tuning.budget_share => {
            let (used, max) = usage.unwrap_or_default();
            Some(format!("org {org} used {used} of {max} daily API requests (past {:.0}%); backfill paused", tuning.budget_share * 100.0))
        }
        _ => None,
    }
}

struct Stopped(String);

/// Runs one Bulk call with retries; a daily-limit answer pauses the org and stops the run.
async fn call<T, F, Fut>(deps: &Deps, tuning: &Tuning, org: &str, tally: &mut Tally, mut f: F) -> Result<T, Stopped>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SfError>>,
{
    let calls = std::sync::atomic::AtomicU64::new(0);
    let result = bulk::retrying(|| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    })
    .await;
    tally.add(Counter::ApiCalls, calls.into_inner());
    match result {
        Ok(v) => Ok(v),
        Err(SfError::RequestLimitExceeded { kind: LimitKind::Daily, message }) => {
            let until = deps.clock.epoch_secs() + tuning.limit_pause.as_secs().max(1) as i64;
            if let Err(e) = budget::pause(deps.store.as_ref(), org, until, &message).await {
                tracing::error!(error = %e, "pause not recorded");
            }
            Err(Stopped(format!("org {org} hit its daily API limit: {message}")))
        }
        Err(e) => Err(Stopped(format!("Salesforce: {e}{}", e.admin_hint().map(|h| format!(" — {h}")).unwrap_or_default()))),
    }
}

/// Closes (if needed), waits for and applies the results of job `i`.
#[allow(clippy::too_many_arguments)]
async fn finish_job(
    deps: &Deps,
    tuning: &Tuning,
    client: &SalesforceClient,
    org: &str,
    cp: &mut Checkpoint,
    i: usize,
    tally: &mut Tally,
    progress: &dyn Progress,
) -> Result<(), HistoricalError> {
    let store = deps.store.as_ref();
    let job = cp.jobs[i].clone();
    if job.step == Step::Uploaded {
        let closed = call(deps, tuning, org, tally, || bulk::set_state(client, &job.job_id, "UploadComplete")).await;
        if let Err(Stopped(reason)) = closed {
            // A close whose answer was lost leaves the job past Open: read it before giving up.
            let info = bulk::retrying(|| bulk::get(client, &job.job_id)).await?;
            tally.add(Counter::ApiCalls, 1);
            if info.state == "Open" {
                return Err(HistoricalError::Setup(reason));
            }
        }
        cp.jobs[i].step = Step::Closed;
        save_state(store, cp, tally).await?;
        crash::point("bulk_after_close");
    }
    let (info, polls) = bulk::wait(client, &job.job_id, tuning.bulk_poll).await?;
    tally.add(Counter::ApiCalls, polls);
    let mut ok = Table::default();
    let mut bad = Table::default();
    let mut left = Table::default();
    if info.state == "JobComplete" {
        ok = bulk::retrying(|| bulk::results(client, &job.job_id, Results::Successful)).await?;
        tally.add(Counter::ApiCalls, 1);
        if info.number_records_failed > 0 {
            bad = bulk::retrying(|| bulk::results(client, &job.job_id, Results::Failed)).await?;
            tally.add(Counter::ApiCalls, 1);
        }
    }
    if info.state != "JobComplete" || info.number_records_processed < job.rows {
        left = bulk::retrying(|| bulk::results(client, &job.job_id, Results::Unprocessed)).await.unwrap_or_default();
        tally.add(Counter::ApiCalls, 1);
    }
    let now_ms = deps.clock.now().unix_timestamp_nanos() as i64 / 1_000_000;
    let mut resend = Vec::new();
    let key_col = |t: &Table| t.col(&job.ext_field);
    // Successful rows.
    if let (Some(k), Some(idc), Some(cc)) = (key_col(&ok), ok.col("sf__Id"), ok.col("sf__Created")) {
        for row in &ok.rows {
            let (Some(key), Some(id)) = (row.get(k), row.get(idc)) else { continue };
            let created = row.get(cc).is_some_and(|c| c.eq_ignore_ascii_case("true"));
            tally.add(if created { Counter::Created } else { Counter::Updated }, 1);
            if let Some((mut entry, version)) = find(store, &cp.site, &job.kinds, key).await? {
                if entry.updated_ms > job.built_ms {
                    // A newer event arrived while the job ran: this row may have overwritten it.
                    if let Ok(ledger::Settled::Resend(newer)) = ledger::invalidate(store, entry, version, now_ms).await {
                        resend.push(newer.event);
                    }
                    continue;
                }
                entry.state = State::Exported;
                entry.exported = Some(entry.occurred_at);
                entry.sf_id = Some(id.clone());
                entry.error = None;
                if let Ok(ledger::Settled::Resend(newer)) = ledger::settle(store, &entry, version, now_ms).await {
                    resend.push(newer.event);
                }
            }
        }
    }
    // Failed rows: permanent ones are reported; transient ones go to the continuous queue.
    if let (Some(k), Some(ec)) = (key_col(&bad), bad.col("sf__Error")) {
        for row in &bad.rows {
            let (Some(key), Some(text)) = (row.get(k), row.get(ec)) else { continue };
            let (code, message) = text.split_once(':').unwrap_or(("ERROR", text.as_str()));
            let err = EventError { code: code.trim().into(), message: message.trim().into(), fields: Vec::new() };
            let item =
                forcelink::salesforce::error::ApiErrorItem { message: err.message.clone(), error_code: err.code.clone(), fields: vec![] };
            let Some((entry, _)) = find(store, &cp.site, &job.kinds, key).await? else { continue };
            if SfError::from_item(400, item).is_transient() {
                tally.add(Counter::Requeued, 1);
                resend.push(entry.event.clone());
            } else {
                fail_entry(deps, store, entry, err, tally).await;
            }
        }
    }
    // The whole job failed (e.g. an unknown column): every row is reported.
    if info.state == "Failed" {
        let err = EventError { code: "BULK_JOB_FAILED".into(), message: info.error_message.clone().unwrap_or_default(), fields: vec![] };
        let mut after = None;
        loop {
            let (entries, next) = ledger::page(store, &cp.site, after, 1000).await?;
            for e in
                entries.into_iter().filter(|e| job.kinds.contains(&e.kind) && e.updated_ms <= job.built_ms && e.state != State::Exported)
            {
                if cp.since.is_none_or(|s| e.occurred_at >= s) {
                    fail_entry(deps, store, e, err.clone(), tally).await;
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    if let Some(k) = key_col(&left) {
        for row in &left.rows {
            let Some(key) = row.get(k) else { continue };
            if let Some((entry, _)) = find(store, &cp.site, &job.kinds, key).await? {
                tally.add(Counter::Requeued, 1);
                resend.push(entry.event);
            }
        }
    }
    if !resend.is_empty() {
        replay::send_events(deps.queue.as_ref(), &resend).await?;
    }
    cp.jobs[i].step = Step::Applied;
    cp.rows_done += job.rows;
    progress.advance(job.rows);
    save_state(store, cp, tally).await
}

/// The ledger entry of an external id, trying each kind the job carries.
async fn find(store: &dyn Store, site: &str, kinds: &[String], key: &str) -> Result<Option<(Entry, u64)>, HistoricalError> {
    for kind in kinds {
        if let Some(found) = ledger::load(store, site, kind, key).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// A permanent failure: ledger (failed), dead-letter queue, report.
async fn fail_entry(deps: &Deps, store: &dyn Store, mut entry: Entry, err: EventError, tally: &mut Tally) {
    tally.failed(&entry.kind, &entry.id, &err);
    if let Some(dlq) = &deps.dead_letters
        && let Err(e) = dlq.send(event::dead_letter(&entry.event, &err.code, &err.message)).await
    {
        tracing::error!(error = %e, "dead-letter send failed; the ledger keeps the failure");
    }
    let Ok(Some((_, version))) = ledger::load(store, &entry.site, &entry.kind, &entry.id).await else { return };
    entry.state = State::Failed;
    entry.error = Some(err);
    let now_ms = deps.clock.now().unix_timestamp_nanos() as i64 / 1_000_000;
    if let Err(e) = ledger::settle(store, &entry, version, now_ms).await {
        tracing::error!(error = %e, "ledger not updated for a failed row");
    }
}
