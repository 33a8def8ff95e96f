//! Historical export through Bulk API 2.0: events held before the site connected are
//! replayed; an interruption (the org's daily limit) stops the run at a checkpoint and a rerun
//! resumes it; the report counts created, updated and failed rows with their event ids. On both
//! backends (embedded, and moto).

mod support;

use export_pusher::historical::{self, Outcome, Quiet};
use export_pusher::ledger::{self, State};
use forcelink::domain::Counter;
use forcelink_stack::both_backends;
use support::{Backend, SITE, TOML, connect, pump_once, quick, result_event, stack};

async fn replays_the_ledger_resumes_after_an_interruption_and_reports(backend: Backend) {
    let s = stack(backend, &TOML).await;
    // 2,000 events in jobs of 500; on moto (serialized DynamoDB: 2,000 take two minutes) 400 in
    // jobs of 100, the same five jobs.
    let n = match backend {
        Backend::Embedded => 2_000,
        Backend::Moto => 400,
    };
    let mut tuning = quick();
    tuning.bulk_job_rows = n / 4;
    let mut events: Vec<serde_json::Value> =
        (0..n).map(|i| result_event(&format!("r_{i}"), "2026-03-01T10:00:00Z", (i % 7) as f64)).collect();
    let mut bad = result_event("r_bad", "2026-03-01T10:00:00Z", 0.0);
    bad["fields"]["score"] = "n/a".into();
    events.push(bad);
    export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    while pump_once(&s.deps, &tuning).await > 0 {}
    assert_eq!(ledger::count(s.deps.store.as_ref(), SITE, State::Held, 5000).await.expect("held"), n + 1, "held before connecting");
    connect(&s, "production").await;
    // The cap trips during the second job (a job takes at least 7 calls; 5xx retries add some).
    s.sim
        .set_faults(&s.org.id, sfsim::Faults { request_limit: Some(14), error_5xx_rate: 0.1, ..sfsim::Faults::default() })
        .expect("faults");
    let first = historical::run(&s.deps, &tuning, SITE, None, &Quiet).await.expect("run");
    let Outcome::Paused { checkpoint, .. } = first else { panic!("expected a pause, got {first:?}") };
    assert!(checkpoint.rows_done < checkpoint.rows_total);
    s.sim.set_faults(&s.org.id, sfsim::Faults { error_5xx_rate: 0.1, ..sfsim::Faults::default() }).expect("faults");
    s.deps
        .store
        .delete(&forcelink::domain::keys::org_budget_pk(&s.org.id), export_pusher::budget::PAUSE_SK, forcelink::ports::Cond::Always)
        .await
        .expect("unpause");
    let second = historical::run(&s.deps, &tuning, SITE, None, &Quiet).await.expect("resume");
    let Outcome::Done(report) = second else { panic!("expected done, got {second:?}") };
    let records = s.sim.records(&s.org.id, "Learning_Result__c").expect("records");
    assert_eq!(records.len(), n, "every record once");
    assert_eq!(report.counts.count(Counter::Created) + report.counts.count(Counter::Updated), n as u64);
    assert_eq!(report.counts.get(Counter::Failed), Some(1));
    assert!(report.tasks.iter().any(|t| t.name == "result/r_bad"), "{:?}", report.tasks);
    assert_eq!(ledger::count(s.deps.store.as_ref(), SITE, State::Held, 10).await.expect("held"), 0);
    // A second run updates, never duplicates.
    let Outcome::Done(again) = historical::run(&s.deps, &tuning, SITE, None, &Quiet).await.expect("again") else { panic!("paused") };
    assert_eq!(s.sim.records(&s.org.id, "Learning_Result__c").expect("records").len(), n);
    assert_eq!(again.counts.get(Counter::Updated), Some(n as u64));
    eprintln!("historical: {:?}; calls {:?}", again.counts, s.sim.calls(&s.org.id));
}

both_backends!(replays_the_ledger_resumes_after_an_interruption_and_reports,);
