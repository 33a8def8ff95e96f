//! End to end against the simulator with faults on (5xx and row locks, session expiry, the
//! daily request limit): N events become exactly N Salesforce records with the latest values,
//! none duplicated, none lost. Every test runs on both backends (embedded, and moto's
//! DynamoDB and SQS). `FORCELINK_EXPORT_E2E_EVENTS` sets N (default 5,000 on the embedded
//! backends; 500 on moto, whose serialized DynamoDB makes 5,000 take about three minutes; a run
//! that small ends within three rounds, so it meets the daily limit from its first round).

mod support;

use std::time::{Duration, Instant};

use export_pusher::ledger::{self, State};
use forcelink_stack::both_backends;
use support::{Backend, SITE, TOML, connect, pump_once, quick, result_event, scores_by_key, stack};

fn n_events(backend: Backend) -> usize {
    let default = match backend {
        Backend::Embedded => 5_000,
        Backend::Moto => 500,
    };
    std::env::var("FORCELINK_EXPORT_E2E_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn n_events_become_n_records_under_faults(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let n = n_events(backend);
    let tuning = quick();
    let limit_round = if n >= 5_000 { 3 } else { 1 };
    // Final values at 10:00; older versions (wrong scores) and duplicates arrive too, in any order.
    let mut events = Vec::with_capacity(n + n / 2);
    for i in 0..n {
        events.push(result_event(&format!("res_{i}"), "2026-03-01T10:00:00Z", (i % 100) as f64));
        if i % 5 == 0 {
            events.push(result_event(&format!("res_{i}"), "2026-03-01T09:00:00Z", -1.0));
        }
        if i % 20 == 0 {
            events.push(result_event(&format!("res_{i}"), "2026-03-01T10:00:00Z", (i % 100) as f64));
        }
    }
    // Shuffle deterministically so older versions sometimes come after newer ones.
    let len = events.len();
    for i in 0..len {
        let j = (i * 7919 + 13) % len;
        events.swap(i, j);
    }
    export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    s.sim.set_faults(&s.org.id, sfsim::Faults { error_5xx_rate: 0.2, lock_row_rate: 0.2, ..sfsim::Faults::default() }).expect("faults");

    let started = Instant::now();
    let mut rounds = 0;
    let mut limit_tripped = false;
    let mut limit_set = false;
    loop {
        rounds += 1;
        if rounds == 2 {
            s.sim.expire_sessions(&s.org.id).expect("expire");
        }
        if rounds == limit_round && !limit_set {
            // The org's daily cap is reached a few calls from now.
            let used = s.sim.calls(&s.org.id).expect("calls").get("api_used").copied().unwrap_or(0);
            let faults =
                sfsim::Faults { error_5xx_rate: 0.2, lock_row_rate: 0.2, request_limit: Some(used + 3), ..sfsim::Faults::default() };
            s.sim.set_faults(&s.org.id, faults).expect("faults");
            limit_set = true;
        }
        let got = pump_once(&s.deps, &tuning).await;
        let paused = export_pusher::budget::paused(s.deps.store.as_ref(), &s.org.id).await.expect("pause");
        if paused.is_some() && !limit_tripped {
            limit_tripped = true;
            // The window frees: the cap is lifted (the pause record still has to expire).
            let faults = sfsim::Faults { error_5xx_rate: 0.2, lock_row_rate: 0.2, ..sfsim::Faults::default() };
            s.sim.set_faults(&s.org.id, faults).expect("faults");
        }
        if got == 0 {
            let depth = s.deps.queue.depth().await.expect("depth");
            let held = ledger::count(s.deps.store.as_ref(), SITE, State::Held, 10).await.expect("held");
            if depth == 0 && held == 0 {
                break;
            }
            if depth == 0 && held > 0 && paused.is_none() {
                // As the oauth-callback does on connect, or an operator with `export flush`.
                s.deps.queue.send(forcelink::domain::export::flush_message(SITE)).await.expect("flush");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "export did not finish");
    }
    assert!(limit_tripped, "the daily limit was never hit");
    let by_key = scores_by_key(&s, "continuous export");
    assert_eq!(by_key.len(), n, "records in Salesforce");
    for i in 0..n {
        assert_eq!(by_key.get(&format!("res_{i}")).copied(), Some((i % 100) as f64), "latest value of res_{i}");
    }
    let failed = ledger::count(s.deps.store.as_ref(), SITE, State::Failed, 10).await.expect("failed");
    assert_eq!(failed, 0);
    let dlq = s.deps.dead_letters.as_ref().expect("dlq").depth().await.expect("dlq depth");
    assert_eq!(dlq, 0, "nothing dead-lettered");
    eprintln!("{n} events → {} records in {:?} ({rounds} batches); calls {:?}", by_key.len(), started.elapsed(), s.sim.calls(&s.org.id));
}

async fn permanent_failures_go_to_the_dead_letter_queue_and_replay_once_fixed(backend: Backend) {
    let toml = TOML.replace("Completed__c = { constant = true }", "Completed__c = { constant = true }, Grade__c = \"{grade}\"");
    let s = stack(backend, &toml).await;
    connect(&s, "production").await;
    let tuning = quick();
    let mut events: Vec<serde_json::Value> = (0..10).map(|i| result_event(&format!("ok_{i}"), "2026-03-01T10:00:00Z", 1.0)).collect();
    let mut bad = result_event("bad_1", "2026-03-01T10:00:00Z", 1.0);
    bad["fields"]["score"] = "not a number".into();
    events.push(bad);
    let mut graded = result_event("graded_1", "2026-03-01T10:00:00Z", 2.0);
    graded["fields"]["grade"] = "A".into();
    events.push(graded);
    events.push(serde_json::json!({"schema": "forcelink.event/v1", "site": SITE, "kind": "result"}));
    export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    s.deps.queue.send("not json".into()).await.expect("send");
    while pump_once(&s.deps, &tuning).await > 0 {}
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 0, "nothing left to retry");
    // 10 fine; "not a number" and the unknown Grade__c field fail for good, as do the two bad bodies.
    assert_eq!(s.sim.records(&s.org.id, "Learning_Result__c").expect("records").len(), 10);
    let dlq = s.deps.dead_letters.as_ref().expect("dlq");
    assert_eq!(dlq.depth().await.expect("depth"), 4);
    let failed = ledger::listed(s.deps.store.as_ref(), SITE, State::Failed, 10).await.expect("failed");
    assert_eq!(failed.len(), 2);
    let reports: Vec<forcelink::domain::RunReport> = forcelink::domain::report::list(s.deps.store.as_ref(), SITE).await.expect("reports");
    let rows: Vec<String> =
        reports.iter().flat_map(|r| r.tasks.iter().map(|t| format!("{} {}", t.name, t.error.clone().unwrap_or_default()))).collect();
    assert!(rows.iter().any(|r| r.starts_with("result/bad_1 JSON_PARSER_ERROR")), "{rows:?}");
    assert!(rows.iter().any(|r| r.starts_with("result/graded_1 INVALID_FIELD")), "{rows:?}");

    // The org gets the field; replay re-sends the failed rows: graded_1 goes through.
    let field = serde_json::from_value(serde_json::json!({"name": "Grade__c", "type": "string"})).expect("field");
    s.sim.declare_field(&s.org.id, "Learning_Result__c", field).expect("declare");
    let n = export_pusher::replay::replay_failed(&s.deps, SITE).await.expect("replay");
    assert_eq!(n, 2);
    while pump_once(&s.deps, &tuning).await > 0 {}
    let records = s.sim.records(&s.org.id, "Learning_Result__c").expect("records");
    assert_eq!(records.len(), 11);
    assert!(records.iter().any(|r| r.get("Grade__c").and_then(|v| v.as_str()) == Some("A")));
    let failed = ledger::listed(s.deps.store.as_ref(), SITE, State::Failed, 10).await.expect("failed");
    assert_eq!(failed.len(), 1, "bad_1 still fails until its data is fixed");
}

async fn held_without_a_connection_then_flow_when_it_connects(backend: Backend) {
    let s = stack(backend, &TOML).await;
    let tuning = quick();
    let events: Vec<serde_json::Value> = (0..30).map(|i| result_event(&format!("h_{i}"), "2026-03-01T10:00:00Z", i as f64)).collect();
    export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    while pump_once(&s.deps, &tuning).await > 0 {}
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 0, "messages deleted");
    assert_eq!(ledger::count(s.deps.store.as_ref(), SITE, State::Held, 100).await.expect("held"), 30);
    assert!(s.sim.records(&s.org.id, "Learning_Result__c").expect("records").is_empty());
    connect(&s, "production").await;
    s.deps.queue.send(forcelink::domain::export::flush_message(SITE)).await.expect("flush");
    while pump_once(&s.deps, &tuning).await > 0 {}
    assert_eq!(ledger::count(s.deps.store.as_ref(), SITE, State::Held, 100).await.expect("held"), 0);
    assert_eq!(s.sim.records(&s.org.id, "Learning_Result__c").expect("records").len(), 30);
}

async fn an_invocation_takes_on_at_most_max_events(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let tuning = export_pusher::Tuning { max_events: 250, ..quick() };
    let events: Vec<serde_json::Value> = (0..1000).map(|i| result_event(&format!("cap_{i}"), "2026-03-01T10:00:00Z", i as f64)).collect();
    let messages = export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    assert_eq!(messages, 5, "bundles of 200 events");
    let records = || s.sim.records(&s.org.id, "Learning_Result__c").expect("records").len();
    assert_eq!(pump_once(&s.deps, &tuning).await, 5, "one receive gets every message");
    assert_eq!(records(), 200, "the first message fits under 250; the next would not");
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 4, "the other four went back to the queue");
    let mut invocations = 1;
    while pump_once(&s.deps, &tuning).await > 0 {
        invocations += 1;
    }
    assert_eq!(records(), 1000);
    assert_eq!(invocations, 5, "one message per invocation");
    let dlq = s.deps.dead_letters.as_ref().expect("dlq");
    assert_eq!(dlq.depth().await.expect("dlq depth"), 0, "deferral never dead-letters");
}

async fn a_message_near_its_last_receive_is_taken_past_the_cap(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let tuning = export_pusher::Tuning { max_events: 250, max_receives: 3, ..quick() };
    let events: Vec<serde_json::Value> = (0..1000).map(|i| result_event(&format!("last_{i}"), "2026-03-01T10:00:00Z", i as f64)).collect();
    export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    pump_once(&s.deps, &tuning).await;
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 4);
    // Their second receive: deferring again would leave them one receive from the dead-letter
    // queue, so all four are taken (the same margin the API-budget slow-down keeps).
    assert_eq!(pump_once(&s.deps, &tuning).await, 4);
    assert_eq!(s.sim.records(&s.org.id, "Learning_Result__c").expect("records").len(), 1000);
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 0);
}

both_backends!(
    n_events_become_n_records_under_faults,
    permanent_failures_go_to_the_dead_letter_queue_and_replay_once_fixed,
    held_without_a_connection_then_flow_when_it_connects,
    an_invocation_takes_on_at_most_max_events,
    a_message_near_its_last_receive_is_taken_past_the_cap,
);
