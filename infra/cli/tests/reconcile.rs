//! The reconciliation poll end to end. It lives with the CLI because it drives two functions:
//! roster-sync's reconcile job and outbound-webhook's endpoint and runner. The simulator's
//! outbound messages reach the real outbound-webhook handler until the endpoint goes down;
//! the messages sent meanwhile are dropped after Salesforce's 24 h of retries; the reconcile
//! job finds exactly those changes, and the workflow runner creates their contacts and
//! invitations once, however often the job runs. On both backends (embedded, and moto's
//! DynamoDB, SQS and KMS).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forcelink::domain::record;
use forcelink::domain::report::{RunKind, RunReport, RunStatus};
use forcelink::domain::workflow::{endpoint_url, workflow_id};
use forcelink::domain::{Contact, Counter, keys};
use forcelink::ports::{ManualClock, Query};
use forcelink_stack::fixtures::ACME_CONTACTS;
use forcelink_stack::{Backend, Stack, both_backends};
use roster_sync::{RunOptions, run_job};
use serde_json::{Map, json};

/// The reconcile job, on the `contacts` workflow's messages.
const CATCH_UP: &str = r#"
[[sites.sync]]
name = "catch-up"
type = "reconcile"
workflow = "contacts"
every_minutes = 60
filter = "Email != null"
"#;

/// The stack on a manual clock, its org sending Contact changes to the outbound-webhook
/// handler it serves.
struct Env {
    stack: Stack,
    clock: Arc<ManualClock>,
    server: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for Env {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

async fn env(backend: Backend) -> Env {
    let mut stack = Stack::start(backend, &format!("{ACME_CONTACTS}{CATCH_UP}")).await;
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    stack.deps.clock = clock.clone();
    stack.connect("acme", "production", "admin@acme.example").await;
    let deps = &stack.deps;
    let endpoint = endpoint_url(&deps.settings.public_url, deps.keys.as_ref(), &workflow_id("acme", "contacts"));
    let spec = sfsim::RuleSpec {
        name: "contacts".into(),
        object: "Contact".into(),
        fields: vec!["Email".into(), "FirstName".into(), "SystemModstamp".into()],
        endpoint_url: endpoint,
        ..sfsim::RuleSpec::default()
    };
    stack.sim.add_outbound_rule("acme", spec).unwrap();
    let server = stack.serve(|deps, req| async move { outbound_webhook::handle(&deps, req).await });
    Env { stack, clock, server }
}

impl Env {
    async fn reconcile(&self, dry_run: bool) -> RunReport {
        let job = roster_sync::runner::find_job(&self.deps, "acme", "catch-up").await.unwrap();
        let out = run_job(&self.deps, &job, &RunOptions { dry_run, ..RunOptions::default() }).await.unwrap();
        assert_eq!(out.report.status, RunStatus::Succeeded, "{:?}", out.report);
        out.report
    }

    /// Runs every queued workflow run, as the SQS event source would.
    async fn run_workflows(&self) -> usize {
        let queue = self.deps.workflow_queue.clone().unwrap();
        let mut n = 0;
        loop {
            let got =
                outbound_webhook::runner::pump(&self.deps, queue.as_ref(), Duration::ZERO, Some(Duration::from_secs(1))).await.unwrap();
            if got == 0 {
                return n;
            }
            n += got;
        }
    }

    async fn contacts(&self) -> BTreeMap<String, Contact> {
        let all: Vec<Contact> =
            record::list(self.deps.store.as_ref(), Query::prefix(keys::directory_pk("acme"), keys::CONTACT_PREFIX)).await.unwrap();
        all.into_iter().map(|c| (c.email.clone(), c)).collect()
    }

    async fn workflow_reports(&self) -> Vec<RunReport> {
        let all: Vec<RunReport> = forcelink::domain::report::list(self.deps.store.as_ref(), "acme").await.unwrap();
        all.into_iter().filter(|r| r.kind == RunKind::Workflow).collect()
    }

    fn insert(&self, first: &str, email: Option<&str>) -> String {
        let mut m = Map::new();
        m.insert("FirstName".into(), json!(first));
        m.insert("LastName".into(), json!("Test"));
        if let Some(e) = email {
            m.insert("Email".into(), json!(e));
        }
        self.sim.insert_records("acme", "Contact", vec![m]).unwrap().remove(0)
    }

    /// Puts the job's watermark back, as if a run had crashed before saving it.
    async fn rewind(&self, watermark: Option<roster_sync::soql::Cursor>) {
        let store = self.deps.store.as_ref();
        let mut st = roster_sync::state::load(store, "acme", "catch-up", self.deps.clock.now()).await.unwrap();
        st.watermark = watermark;
        roster_sync::state::save(store, &st).await.unwrap();
    }

    /// Moves both clocks (Salesforce's and ours) forward.
    fn advance(&self, by: Duration) {
        self.sim.advance_clock(by);
        self.clock.advance(by);
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counts<const N: usize>(r: &RunReport, counters: [Counter; N]) -> [u64; N] {
    counters.map(|c| r.counts.count(c))
}

async fn dropped_messages_are_reconciled_exactly_once(backend: Backend) {
    let e = env(backend).await;
    let first = e.reconcile(false).await;
    assert!(first.tasks.iter().any(|t| t.output.as_deref().is_some_and(|o| o.contains("first run"))), "{first:?}");
    let initial = roster_sync::state::load(e.deps.store.as_ref(), "acme", "catch-up", e.deps.clock.now()).await.unwrap().watermark;
    assert!(initial.is_some());

    // Delivered while the endpoint is up.
    e.insert("Dana", Some("dana@example.com"));
    wait_for("the first delivery", || e.sim.deliveries("acme").unwrap().iter().any(|d| d.acked)).await;
    assert_eq!(e.run_workflows().await, 1);

    // The endpoint goes down: these messages are retried for 24 h, then dropped.
    e.server.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lost: Vec<String> = [("Ann", "ann@example.com"), ("Ben", "ben@example.com"), ("Cat", "cat@example.com")]
        .iter()
        .map(|(n, m)| e.insert(n, Some(m)))
        .collect();
    e.insert("NoMail", None);
    wait_for("failed attempts", || e.sim.deliveries("acme").unwrap().iter().filter(|d| !d.acked).count() >= 2).await;
    e.advance(Duration::from_secs(26 * 3600));
    wait_for("the drops", || e.sim.outbound_dropped("acme").unwrap().len() == 4).await;
    assert!(e.sim.outbound_queue("acme").unwrap().is_empty());

    // A dry run names them and queues nothing.
    let dry = e.reconcile(true).await;
    assert_eq!(counts(&dry, [Counter::Fetched, Counter::Delivered, Counter::Missed, Counter::Queued]), [4, 1, 3, 0], "{dry:?}");
    for id in &lost {
        assert!(dry.tasks.iter().any(|t| t.output.as_deref().is_some_and(|o| o.contains(id.as_str()))), "{id} not named: {dry:?}");
    }
    assert_eq!(e.run_workflows().await, 0);

    let run = e.reconcile(false).await;
    assert_eq!(counts(&run, [Counter::Fetched, Counter::Delivered, Counter::Missed, Counter::Queued]), [4, 1, 3, 3], "{run:?}");
    // A crash before the watermark was saved: the rerun reads them again and takes in nothing twice.
    e.rewind(initial.clone()).await;
    let rerun = e.reconcile(false).await;
    assert_eq!(counts(&rerun, [Counter::Missed, Counter::Queued, Counter::AlreadyQueued]), [3, 0, 3], "{rerun:?}");
    assert_eq!(e.run_workflows().await, 2, "the first run request, and the rerun's for the unfinished three");
    let contacts = e.contacts().await;
    assert_eq!(contacts.keys().cloned().collect::<Vec<_>>(), ["ann@example.com", "ben@example.com", "cat@example.com", "dana@example.com"]);
    assert_eq!(contacts["ben@example.com"].fields["first_name"], "Ben");
    assert_eq!(e.outbox().len(), 4, "one invitation each");
    let reports = e.workflow_reports().await;
    assert_eq!(reports.len(), 4);
    assert!(reports.iter().all(|r| r.status == RunStatus::Succeeded), "{reports:?}");
    let reconciled: Vec<&RunReport> = reports.iter().filter(|r| r.id.starts_with("rc-")).collect();
    assert_eq!(reconciled.len(), 3);
    assert_eq!(reconciled[0].input["fields"]["SystemModstamp"].as_str().map(|s| s.ends_with('Z')), Some(true), "{:?}", reconciled[0]);

    // Nothing new: nothing read, nothing run.
    let again = e.reconcile(false).await;
    assert_eq!(counts(&again, [Counter::Fetched]), [0], "{again:?}");
    // Rewound after the runs: every change is now seen.
    e.rewind(initial).await;
    let seen = e.reconcile(false).await;
    assert_eq!(counts(&seen, [Counter::Delivered, Counter::Missed]), [4, 0], "{seen:?}");
    assert_eq!(e.run_workflows().await, 0);

    // A later change of a lost record whose message is lost too: reconciled as a new change.
    e.sim.update_record("acme", "Contact", &lost[1], json!({"FirstName": "Benjamin"}).as_object().cloned().unwrap()).unwrap();
    e.advance(Duration::from_secs(26 * 3600));
    wait_for("the second drop", || e.sim.outbound_dropped("acme").unwrap().len() == 5).await;
    let later = e.reconcile(false).await;
    assert_eq!(counts(&later, [Counter::Fetched, Counter::Queued]), [1, 1], "{later:?}");
    e.run_workflows().await;
    assert_eq!(e.contacts().await["ben@example.com"].fields["first_name"], "Benjamin");
    assert_eq!(e.outbox().len(), 5);
}

both_backends!(dropped_messages_are_reconciled_exactly_once);
