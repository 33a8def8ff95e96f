//! Syncs an operator can see and trust, on both backends: `forcelink sync status` (watermark,
//! next due, checkpoint, last result), `sync reset`, `sync run --json` (the dry run's diff);
//! a changed job definition, or a job deleted and added again, starts over; incremental reads
//! leave a lag window, so a change stamped within it is read by a later run, not skipped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use forcelink::domain::report::RunStatus;
use forcelink::domain::{Counter, DirectoryUser, keys, record};
use forcelink::ports::ManualClock;
use forcelink_stack::fixtures::ACME;
use forcelink_stack::{Backend, Stack, both_backends};
use roster_sync::{RunOptions, run_job};
use serde_json::{Map, Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_forcelink");

/// Every active user of the simulator's org (4 by default), every 15 minutes.
fn roster(filter: &str, every: u32) -> String {
    format!(
        r#"
[[sites.sync]]
name = "roster"
type = "roster"
filter = "{filter}"
every_minutes = {every}
"#
    )
}

const ACTIVE: &str = "IsActive = true";

async fn stack(backend: Backend, overrides: &[(&str, &str)]) -> Stack {
    let s = Stack::start_with(backend, sfsim::SimConfig::default(), overrides, &format!("{ACME}{}", roster(ACTIVE, 15))).await;
    s.connect("acme", "production", "admin@acme.example").await;
    s
}

fn forcelink(s: &Stack, args: &[&str]) -> (bool, String) {
    let out = forcelink_stack::dev::command(Path::new(BIN), s.vars()).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn json_of(s: &Stack, args: &[&str]) -> Value {
    let (ok, out) = forcelink(s, args);
    assert!(ok, "{args:?}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

async fn run(s: &Stack, opts: RunOptions) -> forcelink::domain::RunReport {
    let job = roster_sync::runner::find_job(&s.deps, "acme", "roster").await.unwrap();
    run_job(&s.deps, &job, &opts).await.unwrap().report
}

async fn sync_status_reset_and_json(backend: Backend) {
    let s = stack(backend, &[]).await;
    let users = s.sim.org("acme").unwrap().users.len() as u64;

    let dry = json_of(&s, &["sync", "run", "acme", "roster", "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["diff"]["added"]["count"], users, "{dry}");
    let status = json_of(&s, &["sync", "status", "acme", "roster", "--json"]);
    assert_eq!(status[0]["state"]["watermark"], Value::Null, "a dry run writes nothing: {status}");
    assert_eq!(status[0]["last_run"], Value::Null);

    let ran = json_of(&s, &["sync", "run", "acme", "roster", "--json"]);
    assert_eq!(ran["report"]["status"], "succeeded", "{ran}");
    assert_eq!(ran["diff"], Value::Null, "the diff is the dry run's");
    let status = json_of(&s, &["sync", "status", "acme", "--json"]);
    let job = &status[0];
    assert_eq!(job["job"]["name"], "roster");
    assert_eq!(job["last_run"]["id"], ran["report"]["id"], "{job}");
    assert_eq!(job["last_run"]["counts"]["added"], users);
    assert!(job["state"]["watermark"]["id"].as_str().is_some_and(|id| id.starts_with("005")), "{job}");
    assert!(job["state"]["next_due"].as_str().is_some(), "{job}");
    assert_eq!(job["checkpoint"], Value::Null);
    let (ok, text) = forcelink(&s, &["sync", "status", "acme"]);
    assert!(ok && text.contains("watermark") && text.contains(ran["report"]["id"].as_str().unwrap()), "{text}");

    // An interrupted run shows its checkpoint.
    s.sim.set_page_size(2);
    let full = RunOptions { full: true, max_pages: Some(1), ..RunOptions::default() };
    let job = roster_sync::runner::find_job(&s.deps, "acme", "roster").await.unwrap();
    let cut = run_job(&s.deps, &job, &full).await.unwrap();
    assert!(cut.interrupted);
    let status = json_of(&s, &["sync", "status", "acme", "roster", "--json"]);
    assert_eq!(status[0]["checkpoint"]["run_id"], Value::from(cut.report.id.clone()), "{status}");
    let (_, text) = forcelink(&s, &["sync", "status", "acme", "roster"]);
    assert!(text.contains("checkpoint") && text.contains(&cut.report.id), "{text}");

    // Reset: no watermark, no checkpoint, due now; the next run is a full one from scratch.
    let (ok, out) = forcelink(&s, &["sync", "reset", "acme", "roster"]);
    assert!(ok, "{out}");
    let status = json_of(&s, &["sync", "status", "acme", "roster", "--json"]);
    assert_eq!((&status[0]["state"]["watermark"], &status[0]["checkpoint"]), (&Value::Null, &Value::Null), "{status}");
    s.sim.set_page_size(2_000);
    let again = run(&s, RunOptions::default()).await;
    assert_ne!(again.id, cut.report.id, "not the interrupted run resumed");
    assert_eq!(again.counts.count(Counter::Fetched), users, "{:?}", again.counts);
    let (ok, out) = forcelink(&s, &["sync", "reset", "acme", "nope"]);
    assert!(!ok && out.contains("nope"), "{out}");
}

async fn a_changed_or_readded_job_starts_over(backend: Backend) {
    let s = stack(backend, &[]).await;
    let users = s.sim.org("acme").unwrap().users.len() as u64;
    let admins = "IsActive = true AND Username LIKE 'ad%'";
    let everyone = "Username != null";
    s.apply(&format!("{ACME}{}", roster(admins, 15))).await;
    assert_eq!(run(&s, RunOptions::default()).await.counts.count(Counter::Fetched), 1);
    assert_eq!(run(&s, RunOptions::default()).await.counts.count(Counter::Fetched), 0, "incremental: nothing new");

    // A schedule change keeps the watermark.
    s.apply(&format!("{ACME}{}", roster(admins, 30))).await;
    assert_eq!(run(&s, RunOptions::default()).await.counts.count(Counter::Fetched), 0);

    // A new filter is a new definition: a full pass, said in the report.
    s.apply(&format!("{ACME}{}", roster(ACTIVE, 30))).await;
    let redone = run(&s, RunOptions::default()).await;
    assert_eq!(redone.counts.count(Counter::Fetched), users, "{:?}", redone.counts);
    assert!(redone.tasks.iter().any(|t| t.output.as_deref().is_some_and(|o| o.contains("definition changed"))), "{redone:?}");
    assert_eq!(run(&s, RunOptions::default()).await.counts.count(Counter::Fetched), 0);

    // An interrupted run of the old definition is not resumed under the new one.
    s.sim.set_page_size(2);
    let job = roster_sync::runner::find_job(&s.deps, "acme", "roster").await.unwrap();
    let cut = run_job(&s.deps, &job, &RunOptions { full: true, max_pages: Some(1), ..RunOptions::default() }).await.unwrap();
    assert!(cut.interrupted);
    s.apply(&format!("{ACME}{}", roster(everyone, 30))).await;
    let fresh = run(&s, RunOptions::default()).await;
    assert_ne!(fresh.id, cut.report.id);
    assert_eq!((fresh.status, fresh.counts.count(Counter::Fetched)), (RunStatus::Succeeded, users), "{:?}", fresh.counts);

    // Deleted, then added again as it was: it starts fresh.
    s.apply(ACME).await;
    let state = s.deps.store.get(&keys::sync_state_pk("acme"), &keys::sync_job_sk("roster")).await.unwrap();
    assert!(state.is_none(), "the deleted job's state went with it");
    s.apply(&format!("{ACME}{}", roster(everyone, 30))).await;
    assert_eq!(run(&s, RunOptions::default()).await.counts.count(Counter::Fetched), users);
}

async fn incremental_reads_leave_a_lag_window(backend: Backend) {
    let mut s = stack(backend, &[("FORCELINK_SYNC_LAG_SECS", "300")]).await;
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    s.deps.clock = clock.clone();
    let users = s.sim.org("acme").unwrap().users.len() as u64;
    assert_eq!(run(&s, RunOptions::default()).await.counts.count(Counter::Fetched), users, "the first run is full");

    // A change stamped now is inside the window: not read yet, and not skipped later.
    let ana = s.sim.org("acme").unwrap().users.into_iter().find(|u| u.username == "ana@acme.example").unwrap().id;
    let fields: Map<String, Value> = [("LastName".to_string(), json!("Lagged"))].into_iter().collect();
    s.sim.update_record("acme", "User", &ana, fields).unwrap();
    let early = run(&s, RunOptions::default()).await;
    assert_eq!(early.counts.count(Counter::Updated), 0, "{:?}", early.counts);
    let name = || async {
        let u = record::load::<DirectoryUser>(s.deps.store.as_ref(), &keys::directory_pk("acme"), &keys::user_sk(&ana)).await.unwrap();
        u.unwrap().record.last_name
    };
    assert_eq!(name().await, "Silva");

    clock.advance(Duration::from_secs(360));
    let later = run(&s, RunOptions::default()).await;
    assert_eq!(later.counts.count(Counter::Updated), 1, "{:?}", later.counts);
    assert_eq!(name().await, "Lagged");
}

/// A wake-up whose job failed fails (so roster-sync's Errors alarm fires), after the job left its report.
async fn a_failed_job_fails_the_wake_up(backend: Backend) {
    let s = stack(backend, &[]).await;
    s.sim.set_faults("acme", sfsim::Faults { cut_query_pages: true, ..Default::default() }).unwrap();
    let mut event = aws_lambda_events::eventbridge::EventBridgeEvent::default();
    event.detail_type = "Scheduled Event".into();
    let err = roster_sync::handle(&s.deps, event.clone()).await.unwrap_err();
    assert!(matches!(&err, roster_sync::SyncError::JobsFailed(jobs) if jobs == &["acme/roster"]), "{err:?}");
    let status = json_of(&s, &["sync", "status", "acme", "roster", "--json"]);
    assert_eq!(status[0]["last_run"]["status"], "failed", "{status}");
    // Not due again yet: the next wake-up has nothing to fail.
    roster_sync::handle(&s.deps, event).await.unwrap();
}

both_backends!(
    sync_status_reset_and_json,
    a_changed_or_readded_job_starts_over,
    incremental_reads_leave_a_lag_window,
    a_failed_job_fails_the_wake_up,
);
