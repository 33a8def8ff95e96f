//! SQS's and DynamoDB's size limits on the export path: sends packed within a
//! `SendMessageBatch`'s total size, an event too large for a message refused before anything is
//! sent, and an event too large for its ledger entry dead-lettered and reported, not retried.

mod support;

use export_pusher::replay::send_events;
use forcelink::ports::QueueError;
use forcelink::ports::queue::{MAX_BATCH_BYTES, MAX_BODY_BYTES};
use forcelink_stack::both_backends;
use support::{Backend, SITE, TOML, connect, pump_once, quick, result_event, stack};

/// A result event carrying `bytes` of comment text.
fn padded(id: &str, bytes: usize) -> serde_json::Value {
    let mut e = result_event(id, "2026-03-01T10:00:00Z", 1.0);
    e["fields"]["comment"] = "x".repeat(bytes).into();
    e
}

async fn sends_are_packed_within_the_batch_size_limit(backend: Backend) {
    let s = stack(backend, &TOML).await;
    // 12 events of 300 KB: 3 to a message (under 1 MiB), one message per batch (two would be
    // over SQS's 1 MiB a SendMessageBatch, which the queue refuses).
    let events: Vec<serde_json::Value> = (0..12).map(|i| padded(&format!("big_{i}"), 300 * 1024)).collect();
    const { assert!(2 * 3 * 300 * 1024 > MAX_BATCH_BYTES && 3 * 300 * 1024 < MAX_BODY_BYTES) };
    let messages = send_events(s.deps.queue.as_ref(), &events).await.expect("packed sends fit");
    assert_eq!(messages, 4);
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 4);
}

async fn an_event_too_large_for_a_message_is_refused_naming_it_and_nothing_is_sent(backend: Backend) {
    let s = stack(backend, &TOML).await;
    let events = vec![padded("fine_1", 10), padded("huge_1", MAX_BODY_BYTES)];
    match send_events(s.deps.queue.as_ref(), &events).await {
        Err(QueueError::TooLarge { what, size, limit }) => {
            assert!(what.contains("event 2 of 2") && what.contains("huge_1"), "{what}");
            assert!(size > limit && limit == MAX_BODY_BYTES);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 0, "nothing was sent");
}

async fn an_event_too_large_for_the_ledger_is_dead_lettered_and_reported_once(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let events = vec![padded("big_1", 500 * 1024), result_event("ok_1", "2026-03-01T10:00:00Z", 2.0)];
    send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    let tuning = quick();
    let mut rounds = 0;
    while pump_once(&s.deps, &tuning).await > 0 {
        rounds += 1;
        assert!(rounds < 5, "the batch keeps coming back");
    }
    assert_eq!(rounds, 1, "handled in one delivery, not retried");
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 0);
    assert_eq!(s.sim.records(&s.org.id, "Learning_Result__c").expect("records").len(), 1, "the other event is exported");
    let dlq = s.deps.dead_letters.as_ref().expect("dlq");
    let dead = dlq.receive(forcelink::ports::Receive::default()).await.expect("receive");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("EVENT_TOO_LARGE") && dead[0].body.contains("big_1"), "dead-lettered intact, with the reason");
    let reports: Vec<forcelink::domain::RunReport> = forcelink::domain::report::list(s.deps.store.as_ref(), SITE).await.expect("reports");
    let rows: Vec<String> =
        reports.iter().flat_map(|r| r.tasks.iter().map(|t| format!("{} {}", t.name, t.error.clone().unwrap_or_default()))).collect();
    assert!(rows.iter().any(|r| r.starts_with("result/big_1 EVENT_TOO_LARGE") && r.contains("409600 bytes")), "{rows:?}");
}

both_backends!(
    sends_are_packed_within_the_batch_size_limit,
    an_event_too_large_for_a_message_is_refused_naming_it_and_nothing_is_sent,
    an_event_too_large_for_the_ledger_is_dead_lettered_and_reported_once,
);
