//! End to end against the simulator: full roster sync with a 6-level hierarchy and custom
//! fields, unchanged re-runs that write nothing, 1% changes that write only those, timestamp
//! ties at page and run boundaries, an interrupted run that resumes, the breaker, managers
//! outside the filter, the schedule and lease, and a generic SOQL job. Every test runs on both
//! backends (embedded, and moto's DynamoDB, SQS and KMS).
//!
//! `ROSTER_E2E_USERS` sets the big test's size (default 10,000 on the embedded backends and
//! 1,000 on moto, whose serialized DynamoDB takes about 5 ms a call; BENCHMARKS.md used
//! 100,000); the ties test takes 1,000 + 500 users on the embedded backends and a fifth of that
//! on moto, with pages a fifth as long.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use forcelink::domain::record;
use forcelink::domain::report::{RunReport, RunStatus};
use forcelink::domain::{Counter, DirectoryUser, Document, Group, GroupKind, keys};
use forcelink::ports::{ManualClock, Query};
use forcelink_stack::fixtures::ACME_CORP;
use forcelink_stack::{Backend, Stack, WriteCount, both_backends};
use roster_sync::{RunOptions, SyncError, run_job};
use serde_json::{Map, Value, json};

/// The stack, its site connected to the simulator's `acme` org, and the directory's writes.
struct Env {
    stack: Stack,
    writes: WriteCount,
}

impl std::ops::Deref for Env {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl Env {
    fn writes(&self) -> u64 {
        self.writes.take()
    }

    async fn job(&self, name: &str) -> forcelink::domain::SyncJob {
        roster_sync::runner::find_job(&self.deps, "acme", name).await.unwrap()
    }

    async fn run(&self, name: &str, opts: RunOptions) -> Result<roster_sync::RunOutcome, SyncError> {
        run_job(&self.deps, &self.job(name).await, &opts).await
    }

    async fn users(&self) -> HashMap<String, DirectoryUser> {
        let all: Vec<DirectoryUser> =
            record::list(self.deps.store.as_ref(), Query::prefix(keys::directory_pk("acme"), keys::USER_PREFIX).limit(1000)).await.unwrap();
        all.into_iter().map(|u| (u.id.clone(), u)).collect()
    }

    async fn groups(&self) -> Vec<Group> {
        record::list(self.deps.store.as_ref(), Query::prefix(keys::directory_pk("acme"), keys::GROUP_PREFIX).limit(1000)).await.unwrap()
    }

    fn sf_users(&self) -> Vec<Map<String, Value>> {
        self.sim
            .records("acme", "User")
            .unwrap()
            .into_iter()
            .map(|f| serde_json::to_value(f).unwrap().as_object().cloned().unwrap())
            .collect()
    }
}

/// The roster job, notifying the site's admin of every successful run.
const ROSTER_JOB: &str = r#"
[[sites.sync]]
name = "roster"
type = "roster"
every_minutes = 15
tag_fields = { region = "Region__c", department = "Department" }
notify = { on_success = true }
"#;

async fn env(backend: Backend, extra: &str) -> Env {
    let mut stack = Stack::start(backend, &format!("{ACME_CORP}{ROSTER_JOB}{extra}")).await;
    stack.connect("acme", "production", "admin@acme.example").await;
    let writes = stack.count_writes(&keys::directory_pk("acme"));
    Env { stack, writes }
}

fn spec(count: usize, qstream_share: f64, inactive_share: f64) -> sfsim::GenSpec {
    let region: sfsim::FieldDef = serde_json::from_value(json!({"name": "Region__c", "type": "string"})).unwrap();
    sfsim::GenSpec {
        count,
        depth: 6,
        roles: true,
        qstream_share,
        inactive_share,
        custom_fields: vec![region],
        domain: "gen.example".into(),
    }
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

/// The big test's population (see the module doc).
fn size(backend: Backend) -> usize {
    let default = match backend {
        Backend::Embedded => 10_000,
        Backend::Moto => 1_000,
    };
    std::env::var("ROSTER_E2E_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The big one: full sync, unchanged re-runs, 1% changed.
async fn full_sync_then_unchanged_then_one_percent(backend: Backend) {
    let n = size(backend);
    let e = env(backend, "").await;
    let t0 = std::time::Instant::now();
    e.sim.generate_users("acme", spec(n, 0.9, 0.02)).unwrap();
    eprintln!("generated at {:?}", t0.elapsed());
    let sf = e.sf_users();
    eprintln!("read back at {:?}", t0.elapsed());
    let wanted: HashSet<String> = sf
        .iter()
        .filter(|u| is_true(u.get("isQstreamUser__c")) && is_true(u.get("IsActive")))
        .map(|u| u["Id"].as_str().unwrap().to_string())
        .collect();
    let filtered = sf.iter().filter(|u| is_true(u.get("isQstreamUser__c"))).count() as u64;

    let t = std::time::Instant::now();
    let first = e.run("roster", RunOptions::default()).await.unwrap();
    let r = &first.report;
    eprintln!("full sync of {n} users: {:?} in {:?}: {:?}", r.status, t.elapsed(), r.counts);
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    assert_eq!(r.counts.count(Counter::Fetched), filtered);
    let pages = filtered.div_ceil(2000);
    assert_eq!(r.counts.count(Counter::ApiCalls), pages + r.counts.count(Counter::ManagersLookedUp).div_ceil(200), "{:?}", r.counts);
    let users = e.users().await;
    for id in &wanted {
        let u = users.get(id).unwrap_or_else(|| panic!("{id} missing"));
        assert!(u.active && u.is_salesforce_user() && u.tags["participant"] == "true", "{u:?}");
        assert_eq!(u.salesforce_org_id.as_deref(), Some(e.sim.org("acme").unwrap().id.as_str()), "SSO matches on (org, user)");
        let generated = u.email.ends_with("gen.example");
        assert!(u.tags.contains_key("department") && (u.tags.contains_key("region") || !generated), "{u:?}");
    }
    // Every active user's manager is in the directory (looked up when outside the filter).
    let by_id: HashMap<&str, &Map<String, Value>> = sf.iter().map(|u| (u["Id"].as_str().unwrap(), u)).collect();
    let mut outside = 0;
    for u in users.values().filter(|u| u.active) {
        if let Some(m) = u.manager_id.as_ref().filter(|m| is_true(by_id[m.as_str()].get("IsActive"))) {
            let mu = users.get(m).unwrap_or_else(|| panic!("manager {m} of {} not looked up", u.id));
            if !is_true(by_id[m.as_str()].get("isQstreamUser__c")) {
                assert_eq!(mu.tags["participant"], "false");
                outside += 1;
            }
        }
    }
    assert!(outside > 0, "the 10% outside the filter include managers");
    let groups = e.groups().await;
    assert!(groups.iter().any(|g| g.kind == GroupKind::Senior) && groups.iter().any(|g| g.kind == GroupKind::Frontline));
    // A manager who is a participant is in both roles.
    let both =
        groups.iter().find(|g| users[&g.manager_id].tags["participant"] == "true" && users[&g.manager_id].manager_id.is_some()).unwrap();
    let boss = users[&both.manager_id].manager_id.clone().unwrap();
    assert!(groups.iter().any(|g| g.id == format!("frontline-{boss}") && g.members.contains(&both.manager_id)));
    e.writes();

    eprintln!("checked the directory at {:?}", t.elapsed());
    // Unchanged: an incremental re-run and a full one write nothing.
    let again = e.run("roster", RunOptions::default()).await.unwrap().report;
    assert_eq!(
        (again.counts.count(Counter::DirectoryWrites), e.writes(), again.counts.count(Counter::ApiCalls)),
        (0, 0, 1),
        "{:?}",
        again.counts
    );
    let full = e.run("roster", RunOptions { full: true, ..RunOptions::default() }).await.unwrap().report;
    assert_eq!((full.counts.count(Counter::DirectoryWrites), e.writes()), (0, 0), "{:?}", full.counts);
    assert_eq!(full.counts.get(Counter::Deactivated), None);

    eprintln!("unchanged re-runs done at {:?}", t.elapsed());
    // 1% changed: only those are written.
    let changed: Vec<&String> = wanted.iter().take(n / 100).collect();
    for (i, id) in changed.iter().enumerate() {
        let mut m = Map::new();
        m.insert("Region__c".into(), json!(format!("moved-{i}")));
        e.sim.update_record("acme", "User", id, m).unwrap();
    }
    eprintln!("1% changed at {:?}", t.elapsed());
    let inc = e.run("roster", RunOptions::default()).await.unwrap().report;
    assert_eq!(inc.counts.count(Counter::Updated), changed.len() as u64, "{:?}", inc.counts);
    assert_eq!((inc.counts.count(Counter::DirectoryWrites), e.writes()), (changed.len() as u64, changed.len() as u64), "{:?}", inc.counts);
    let users = e.users().await;
    assert_eq!(users[changed[0]].tags["region"], "moved-0");

    // Every run left a report.
    let reports: Vec<RunReport> = forcelink::domain::report::list(e.deps.store.as_ref(), "acme").await.unwrap();
    assert_eq!(reports.len(), 4);
    assert_eq!(e.outbox().len(), 4, "on_success mails the admin");
}

/// Timestamp ties at page and run boundaries, and a run interrupted twice that resumes.
async fn ties_and_interrupted_runs_lose_nothing(backend: Backend) {
    match backend {
        Backend::Embedded => ties_and_interrupted_runs_lose_nothing_with(backend, 1_000, 200).await,
        Backend::Moto => ties_and_interrupted_runs_lose_nothing_with(backend, 200, 40).await,
    }
}

/// `n` users, then `n / 2` more, read `page` at a time (`n` a multiple of `page`: the
/// simulator's 4 seeded users make a last short page).
async fn ties_and_interrupted_runs_lose_nothing_with(backend: Backend, n: usize, page: usize) {
    let e = env(backend, "").await;
    e.sim.set_page_size(page);
    e.sim.generate_users("acme", spec(n, 1.0, 0.0)).unwrap();
    let stamps: HashSet<String> = e.sf_users().iter().map(|u| u["SystemModstamp"].as_str().unwrap().to_string()).collect();
    assert!(stamps.len() <= 2, "generated users share one SystemModstamp: every page boundary is a tie");

    let stop = RunOptions { max_pages: Some(2), ..RunOptions::default() };
    let a = e.run("roster", stop.clone()).await.unwrap();
    assert!(a.interrupted);
    assert_eq!(e.users().await.len(), 2 * page);
    let b = e.run("roster", stop.clone()).await.unwrap();
    assert!(b.interrupted && b.report.id == a.report.id, "one run across invocations");
    let c = e.run("roster", RunOptions::default()).await.unwrap().report;
    assert_eq!(c.id, a.report.id);
    assert_eq!(c.status, RunStatus::Succeeded, "{c:?}");
    // The simulator's 4 seeded users are flagged too.
    let total = n as u64 + 4;
    assert_eq!((c.counts.count(Counter::Fetched), c.counts.count(Counter::Added)), (total, total), "{:?}", c.counts);
    assert_eq!(c.counts.count(Counter::ApiCalls), total.div_ceil(page as u64), "every page over 3 invocations, none read twice");
    let users = e.users().await;
    assert_eq!(users.values().filter(|u| u.active).count() as u64, total);

    // More users at one instant, read incrementally across an interruption inside the tie.
    e.sim.generate_users("acme", spec(n / 2, 1.0, 0.0)).unwrap();
    let d = e.run("roster", RunOptions { max_pages: Some(1), ..RunOptions::default() }).await.unwrap();
    assert!(d.interrupted);
    let f = e.run("roster", RunOptions::default()).await.unwrap().report;
    assert_eq!(f.counts.count(Counter::Added), n as u64 / 2, "{:?}", f.counts);
    assert_eq!(e.users().await.len(), n + 4 + n / 2);
}

/// Leaving the filter, becoming inactive, the breaker, cycles.
async fn deactivation_breaker_and_cycles(backend: Backend) {
    let e = env(backend, "").await;
    e.sim.generate_users("acme", spec(300, 1.0, 0.0)).unwrap();
    e.run("roster", RunOptions::default()).await.unwrap();
    let all = e.users().await;
    let manages = |id: &str| all.values().any(|o| o.manager_id.as_deref() == Some(id));
    let mut ids: Vec<String> =
        all.values().filter(|u| u.manager_id.is_some() && u.email.ends_with("gen.example")).map(|u| u.id.clone()).collect();
    ids.sort();
    let (mut leaves, managers): (Vec<String>, Vec<String>) = ids.iter().cloned().partition(|id| !manages(id));
    leaves.truncate(55);
    leaves.extend(managers.into_iter().take(5));
    let set = |id: &str, field: &str, v: Value| {
        let mut m = Map::new();
        m.insert(field.into(), v);
        e.sim.update_record("acme", "User", id, m).unwrap();
    };
    // 20% leave the filter: the breaker refuses, nothing is deactivated.
    let leavers: Vec<&String> = leaves.iter().collect();
    for id in &leavers {
        set(id, "isQstreamUser__c", json!(false));
    }
    let err = e.run("roster", RunOptions { full: true, ..RunOptions::default() }).await.unwrap_err();
    assert!(matches!(err, SyncError::Breaker { .. }), "{err}");
    assert!(err.to_string().contains("--force"));
    assert_eq!(e.users().await.values().filter(|u| u.active).count(), 304);
    let failed: Vec<RunReport> = forcelink::domain::report::list(e.deps.store.as_ref(), "acme").await.unwrap();
    assert!(failed.iter().any(|r| r.status == RunStatus::Failed && r.error.as_deref().is_some_and(|m| m.contains("breaker"))));
    // A dry run shows the diff and writes nothing.
    e.writes();
    let dry = e.run("roster", RunOptions { full: true, force: true, dry_run: true, ..RunOptions::default() }).await.unwrap();
    assert_eq!(e.writes(), 0);
    assert!(dry.diff.deactivated.count > 0 && dry.diff.deactivated.count <= 60, "{:?}", dry.diff.deactivated.count);
    // Forced: leavers are deactivated (never deleted) unless still a manager, who stays as a non-participant.
    let forced = e.run("roster", RunOptions { full: true, force: true, ..RunOptions::default() }).await.unwrap().report;
    let users = e.users().await;
    assert_eq!(users.len(), 304, "nobody deleted");
    for id in &leavers {
        let u = &users[*id];
        let manages = users.values().any(|o| o.active && o.manager_id.as_deref() == Some(id.as_str()));
        if manages {
            assert!(u.active && u.tags["participant"] == "false", "{u:?}");
        } else {
            assert!(!u.active, "{u:?}");
        }
    }
    assert_eq!(forced.counts.count(Counter::Deactivated), dry.diff.deactivated.count);
    // An inactive user is deactivated by the incremental run.
    let quitter = ids.iter().rev().find(|id| users[*id].active && !manages(id)).unwrap();
    set(quitter, "IsActive", json!(false));
    let inc = e.run("roster", RunOptions::default()).await.unwrap().report;
    assert_eq!(inc.counts.count(Counter::Deactivated), 1, "{:?}", inc.counts);
    assert!(!e.users().await[quitter].active);

    // A management cycle is broken and reported.
    let (a, b) = (&ids[150], &ids[151]);
    set(a, "ManagerId", json!(b));
    set(b, "ManagerId", json!(a));
    let cyc = e.run("roster", RunOptions::default()).await.unwrap().report;
    assert_eq!(cyc.counts.count(Counter::Cycles), 1, "{:?}", cyc.counts);
    assert!(cyc.tasks.iter().any(|t| t.output.as_deref().is_some_and(|o| o.contains("cycle"))));
}

/// The schedule: due jobs run once per cadence; the lease keeps a second run out.
async fn schedule_and_lease(backend: Backend) {
    let mut e = env(backend, "").await;
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    e.stack.deps.clock = clock.clone();
    e.sim.generate_users("acme", spec(50, 1.0, 0.0)).unwrap();
    let event = aws_lambda_events::eventbridge::EventBridgeEvent::default();
    let far = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let w = roster_sync::handle_until(&e.deps, event.clone(), far).await.unwrap();
    assert_eq!(w.finished, ["acme/roster"]);
    let w = roster_sync::handle_until(&e.deps, event.clone(), far).await.unwrap();
    assert!(w.finished.is_empty(), "not due again before 15 minutes");
    clock.advance(std::time::Duration::from_secs(16 * 60));
    let now = e.deps.clock.epoch_secs();
    let lease = roster_sync::due::acquire(e.deps.store.as_ref(), "acme", "roster", "someone-else", now, 60).await.unwrap().unwrap();
    let w = roster_sync::handle_until(&e.deps, event.clone(), far).await.unwrap();
    assert_eq!(w.busy, ["acme/roster"], "the lease keeps an overlapping wake-up out");
    roster_sync::due::release(e.deps.store.as_ref(), lease).await;
    let w = roster_sync::handle_until(&e.deps, event, far).await.unwrap();
    assert_eq!(w.finished, ["acme/roster"]);
}

const SOQL_JOB: &str = r#"
[[sites.sync]]
name = "surveys"
type = "soql"
query = "SELECT Survey__c, Score__c, Comment__c, Submitted_At__c, Contact__r.Email FROM Survey_Response__c WHERE Score__c >= 0"
date_field = "Submitted_At__c"
api_version = "62.0"
mapping = { score = "{Score__c}", feedback_type = "survey/{Survey__c}", who = "{Contact__r.Email}" }
filter = "Survey__c != 'ignored'"
record_limit = 30
duplicates = "update"
redact = [{ kind = "email" }, { kind = "card" }]
"#;

/// A generic SOQL job: validation, mapping, redaction, filter, record limit, increments.
async fn soql_job_loads_documents(backend: Backend) {
    let e = env(backend, SOQL_JOB).await;
    let contact = e
        .sim
        .insert_records("acme", "Contact", vec![json!({"LastName": "Silva", "Email": "ana@example.com"}).as_object().cloned().unwrap()])
        .unwrap();
    let rows: Vec<Map<String, Value>> = (0..50)
        .map(|i| {
            json!({"Survey__c": if i % 10 == 9 { "ignored".to_string() } else { format!("s{}", i % 3) }, "Score__c": i,
                "Comment__c": format!("call me at bob{i}@example.org, card 4111 1111 1111 1111"),
                "Submitted_At__c": format!("2026-01-01T00:00:{:02}.000Z", i / 2), "Contact__c": contact[0]})
            .as_object()
            .cloned()
            .unwrap()
        })
        .collect();
    e.sim.insert_records("acme", "Survey_Response__c", rows).unwrap();
    let first = e.run("surveys", RunOptions::default()).await.unwrap().report;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_eq!(first.counts.count(Counter::Added), 30, "record limit per run: {:?}", first.counts);
    let second = e.run("surveys", RunOptions::default()).await.unwrap().report;
    assert_eq!(second.counts.count(Counter::Added), 15, "45 pass the filter; ties at the boundary lose nothing: {:?}", second.counts);
    let third = e.run("surveys", RunOptions::default()).await.unwrap().report;
    assert_eq!(third.counts.get(Counter::Added), None);
    let docs: Vec<Document> = record::list(e.deps.store.as_ref(), Query::prefix(keys::document_pk("acme"), "surveys#")).await.unwrap();
    assert_eq!(docs.len(), 45);
    let d = &docs[0];
    assert_eq!((d.feedback_provider.as_str(), d.job_name.as_str()), ("Salesforce", "surveys"));
    assert!(d.feedback_type.starts_with("survey/s"), "{d:?}");
    assert_eq!(d.fields["who"], "a***@example.com");
    assert!(d.source_value.contains("b***@example.org") && d.source_value.contains("************1111"), "{}", d.source_value);
    assert!(!d.source_value.contains("4111 1111"));
    e.writes();
    let full = e.run("surveys", RunOptions { full: true, ..RunOptions::default() }).await.unwrap().report;
    assert_eq!(full.counts.get(Counter::DocumentWrites), Some(0), "{:?}", full.counts);

    // Validation: unknown fields from describe, GROUP BY refused.
    let mut job = e.job("surveys").await;
    if let forcelink::domain::sync::SyncKind::Soql { query, .. } = &mut job.kind {
        *query = "SELECT Nope__c, Submitted_At__c FROM Survey_Response__c".into();
    }
    let err = run_job(&e.deps, &job, &RunOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("unknown fields on Survey_Response__c: Nope__c"), "{err}");
    if let forcelink::domain::sync::SyncKind::Soql { query, .. } = &mut job.kind {
        *query = "SELECT Survey__c, Submitted_At__c FROM Survey_Response__c GROUP BY Survey__c".into();
    }
    let err = run_job(&e.deps, &job, &RunOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("GROUP BY"), "{err}");
}

/// A query answer cut short (`done: false`, no `nextRecordsUrl`) fails the run: it never counts
/// as a complete read, so a full pass deactivates nobody on partial data.
async fn a_cut_short_read_never_deactivates(backend: Backend) {
    let e = env(backend, SOQL_JOB).await;
    e.sim.set_page_size(200);
    e.sim.generate_users("acme", spec(300, 1.0, 0.0)).unwrap();
    e.run("roster", RunOptions::default()).await.unwrap();
    let users = e.users().await;
    let active = users.values().filter(|u| u.active).count();
    let manages = |id: &str| users.values().any(|o| o.manager_id.as_deref() == Some(id));
    let leaver = users.values().find(|u| u.email.ends_with("gen.example") && !manages(&u.id)).unwrap().id.clone();
    let mut m = Map::new();
    m.insert("isQstreamUser__c".into(), json!(false));
    e.sim.update_record("acme", "User", &leaver, m).unwrap();

    e.sim.set_faults("acme", sfsim::Faults { cut_query_pages: true, ..Default::default() }).unwrap();
    for job in ["roster", "surveys"] {
        let err = e.run(job, RunOptions { full: true, ..RunOptions::default() }).await.unwrap_err();
        assert!(err.to_string().contains("without `done: true`"), "{job}: {err}");
    }
    assert_eq!(e.users().await.values().filter(|u| u.active).count(), active, "nobody deactivated on a partial read");

    e.sim.set_faults("acme", sfsim::Faults::default()).unwrap();
    let full = e.run("roster", RunOptions { full: true, ..RunOptions::default() }).await.unwrap().report;
    assert_eq!(full.counts.count(Counter::Deactivated), 1, "{:?}", full.counts);
    assert!(!e.users().await[&leaver].active);
}

both_backends!(
    full_sync_then_unchanged_then_one_percent,
    ties_and_interrupted_runs_lose_nothing,
    deactivation_breaker_and_cycles,
    schedule_and_lease,
    soql_job_loads_documents,
    a_cut_short_read_never_deactivates,
);
