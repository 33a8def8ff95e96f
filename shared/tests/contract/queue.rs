//! The `Queue` contract: every backend (SQS, embedded) must pass all of it.
//!
//! Each run takes a fresh, empty queue whose default visibility timeout is 30 s and whose
//! messages go to `dlq` (also fresh) after `max_receives` receives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forcelink::ports::queue::{MAX_BATCH, MAX_BATCH_BYTES, MAX_BODY_BYTES, Message, Queue, QueueError, Receive};

/// Runs every queue check. `max_receives` must be at least 2.
pub async fn queue_contract(queue: Arc<dyn Queue>, dlq: Arc<dyn Queue>, max_receives: u32) {
    assert!(max_receives >= 2);
    let q = queue.as_ref();
    refuses_bad_requests(q).await;
    size_limits(q).await;
    visibility_and_receive_counts(q).await;
    receipts(q).await;
    delays_and_long_polls(queue.clone()).await;
    dead_letters(q, dlq.as_ref(), max_receives).await;
    assert_eq!(q.depth().await.expect("depth"), 0, "the queue is empty at the end");
}

fn now() -> Receive {
    Receive { max: MAX_BATCH, visibility: Some(Duration::from_secs(30)), wait: Duration::ZERO }
}

/// Receives until `n` messages came (SQS's short polls may return fewer than are there).
async fn receive_n(q: &dyn Queue, n: usize, req: Receive) -> Vec<Message> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < n {
        assert!(Instant::now() < deadline, "expected {n} messages, received {}", got.len());
        let max = req.max.min(n - got.len());
        got.extend(q.receive(Receive { max, ..req }).await.expect("receive"));
    }
    assert_eq!(got.len(), n, "no more than asked for");
    got
}

async fn assert_empty(q: &dyn Queue, what: &str) {
    let got = q.receive(now()).await.expect("receive");
    assert!(got.is_empty(), "{what}: expected nothing, got {got:?}");
}

async fn refuses_bad_requests(q: &dyn Queue) {
    let invalid = |r: Result<Vec<String>, QueueError>| matches!(r, Err(QueueError::Invalid(_)));
    assert!(invalid(q.send_batch(&[], Duration::ZERO).await), "an empty batch is refused");
    let eleven: Vec<String> = (0..=MAX_BATCH).map(|i| format!("m{i}")).collect();
    assert!(invalid(q.send_batch(&eleven, Duration::ZERO).await), "a batch of 11 is refused");
    assert!(invalid(q.send_batch(&["x".into()], Duration::from_secs(901)).await), "a delay over 15 minutes is refused");
    let bad_receive = |r: Result<Vec<Message>, QueueError>| matches!(r, Err(QueueError::Invalid(_)));
    assert!(bad_receive(q.receive(Receive { max: 0, ..now() }).await), "receiving 0 is refused");
    assert!(bad_receive(q.receive(Receive { max: MAX_BATCH + 1, ..now() }).await), "receiving 11 is refused");
    assert!(bad_receive(q.receive(Receive { wait: Duration::from_secs(21), ..now() }).await), "a wait over 20 s is refused");
    assert!(bad_receive(q.receive(Receive { visibility: Some(Duration::from_secs(12 * 3600 + 1)), ..now() }).await));
    assert_eq!(q.depth().await.expect("depth"), 0, "refused requests send nothing");
    assert_empty(q, "after refused sends").await;
}

fn assert_too_large<T: std::fmt::Debug>(result: Result<T, QueueError>, size: usize, limit: usize, what: &str) {
    match result {
        Err(QueueError::TooLarge { size: s, limit: l, .. }) => assert_eq!((s, l), (size, limit), "{what}: size and limit"),
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
}

/// SQS's size limits: 1 MiB a message and 1 MiB a batch, refused as `TooLarge` and sending
/// nothing; exactly 1 MiB passes.
async fn size_limits(q: &dyn Queue) {
    let over = vec!["x".repeat(MAX_BODY_BYTES + 1)];
    assert_too_large(q.send_batch(&over, Duration::ZERO).await, MAX_BODY_BYTES + 1, MAX_BODY_BYTES, "a body of 1 MiB + 1");
    let half = MAX_BATCH_BYTES / 2;
    let pair = vec!["a".repeat(half), "b".repeat(half + 1)];
    assert_too_large(q.send_batch(&pair, Duration::ZERO).await, MAX_BATCH_BYTES + 1, MAX_BATCH_BYTES, "a batch of 1 MiB + 1");
    assert_too_large(q.send("é".repeat(MAX_BODY_BYTES / 2 + 1)).await, MAX_BODY_BYTES + 2, MAX_BODY_BYTES, "bytes count, not chars");
    assert_eq!(q.depth().await.expect("depth"), 0, "refused sends send nothing");

    let exact = vec!["a".repeat(half), "b".repeat(half)];
    q.send_batch(&exact, Duration::ZERO).await.expect("a batch of exactly 1 MiB");
    let got = receive_n(q, 2, now()).await;
    assert_eq!(got.iter().map(|m| m.body.len()).sum::<usize>(), MAX_BATCH_BYTES, "both bodies come back whole");
    for m in got {
        q.delete(&m.receipt_handle).await.expect("delete");
    }
}

async fn visibility_and_receive_counts(q: &dyn Queue) {
    let small: Vec<String> = vec!["one".into(), r#"{"json":"✓ Zoë"}"#.into()];
    let largest = "x".repeat(MAX_BATCH_BYTES - small.iter().map(String::len).sum::<usize>());
    let bodies: Vec<String> = small.into_iter().chain([largest]).collect();
    let ids = q.send_batch(&bodies, Duration::ZERO).await.expect("send a batch");
    assert_eq!(ids.len(), 3, "one id per body, in order");
    assert!(ids.iter().all(|id| !id.is_empty()));
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 3, "ids are distinct");
    assert_eq!(q.depth().await.expect("depth"), 3);

    let mut got = receive_n(q, 3, now()).await;
    got.sort_by_key(|m| ids.iter().position(|id| *id == m.id));
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.id, ids[i], "received ids are the sent ones");
        assert_eq!(m.body, bodies[i], "bodies come back intact (the largest one too)");
        assert_eq!(m.receive_count, 1, "first receive counts 1");
        assert!(!m.receipt_handle.is_empty());
    }
    assert_empty(q, "received messages are hidden").await;
    assert_eq!(q.depth().await.expect("depth"), 3, "in-flight messages count in the depth");

    // Deleting one: gone for good.
    q.delete(&got[0].receipt_handle).await.expect("delete");
    assert_eq!(q.depth().await.expect("depth"), 2);

    // change_visibility(0): back at once, counted again, with a new receipt handle.
    q.change_visibility(&got[1].receipt_handle, Duration::ZERO).await.expect("change visibility");
    let again = receive_n(q, 1, now()).await;
    assert_eq!((again[0].id.as_str(), again[0].receive_count), (ids[1].as_str(), 2), "made visible, received again");
    assert_ne!(again[0].receipt_handle, got[1].receipt_handle, "each delivery has its own receipt handle");
    q.delete(&again[0].receipt_handle).await.expect("delete by the newest receipt");

    // A short visibility timeout that runs out: the message comes back by itself.
    q.change_visibility(&got[2].receipt_handle, Duration::from_secs(1)).await.expect("shorten visibility");
    assert_empty(q, "still hidden before the timeout").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let back = receive_n(q, 1, Receive { visibility: Some(Duration::from_secs(1)), ..now() }).await;
    assert_eq!((back[0].id.as_str(), back[0].receive_count), (ids[2].as_str(), 2), "back after its visibility timeout");
    assert_empty(q, "hidden again by the receive's own visibility").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let back = receive_n(q, 1, now()).await;
    assert_eq!(back[0].receive_count, 3, "the receive's visibility ran out too");
    // Extending the visibility keeps it hidden.
    q.change_visibility(&back[0].receipt_handle, Duration::from_secs(60)).await.expect("extend");
    assert_empty(q, "extended").await;
    q.delete(&back[0].receipt_handle).await.expect("delete");
    assert_eq!(q.depth().await.expect("depth"), 0);

    // `max` is honoured.
    let ten: Vec<String> = (0..MAX_BATCH).map(|i| format!("m{i}")).collect();
    assert_eq!(q.send_batch(&ten, Duration::ZERO).await.expect("send 10").len(), MAX_BATCH);
    let some = q.receive(Receive { max: 3, ..now() }).await.expect("receive 3");
    assert!(!some.is_empty() && some.len() <= 3, "at most `max` messages: got {}", some.len());
    let mut all = some;
    all.extend(receive_n(q, MAX_BATCH - all.len(), now()).await);
    let mut received: Vec<String> = all.iter().map(|m| m.body.clone()).collect();
    received.sort();
    let mut sent = ten.clone();
    sent.sort();
    assert_eq!(received, sent, "every message once");
    for m in &all {
        q.delete(&m.receipt_handle).await.expect("delete");
    }
    assert_eq!(q.depth().await.expect("depth"), 0);
}

async fn receipts(q: &dyn Queue) {
    let bogus = "forcelink-not-a-receipt-handle";
    assert!(matches!(q.delete(bogus).await, Err(QueueError::InvalidReceipt)), "delete with a bogus receipt");
    assert!(
        matches!(q.change_visibility(bogus, Duration::ZERO).await, Err(QueueError::InvalidReceipt)),
        "change_visibility with a bogus receipt"
    );
    q.send("twice".into()).await.expect("send");
    let m = receive_n(q, 1, now()).await.remove(0);
    q.delete(&m.receipt_handle).await.expect("delete");
    q.delete(&m.receipt_handle).await.expect("deleting an already deleted message is not an error (as on SQS)");
    assert_empty(q, "deleted").await;
}

async fn delays_and_long_polls(queue: Arc<dyn Queue>) {
    let q = queue.as_ref();
    // A delayed message is invisible until its delay passes.
    let ids = q.send_batch(&["later".into()], Duration::from_secs(2)).await.expect("send delayed");
    assert_empty(q, "a delayed message is not yet visible").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let m = receive_n(q, 1, now()).await.remove(0);
    assert_eq!((m.id.as_str(), m.body.as_str(), m.receive_count), (ids[0].as_str(), "later", 1));
    q.delete(&m.receipt_handle).await.expect("delete");

    // A long poll on an empty queue waits, then returns nothing.
    let start = Instant::now();
    let got = q.receive(Receive { wait: Duration::from_secs(2), ..now() }).await.expect("long poll");
    assert!(got.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(1500), "the long poll waited ({:?})", start.elapsed());

    // A long poll returns as soon as a message is sent.
    let sender = queue.clone();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sender.send("wake".into()).await.expect("send during the poll");
    });
    let start = Instant::now();
    let got = q.receive(Receive { wait: Duration::from_secs(10), ..now() }).await.expect("long poll");
    send.await.expect("sender");
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["wake"], "the long poll got the message");
    assert!(start.elapsed() < Duration::from_secs(5), "and returned early ({:?})", start.elapsed());
    q.delete(&got[0].receipt_handle).await.expect("delete");
}

async fn dead_letters(q: &dyn Queue, dlq: &dyn Queue, max_receives: u32) {
    let id = q.send("poison".into()).await.expect("send");
    q.send("healthy".into()).await.expect("send");
    let mut healthy = None;
    for round in 1..=max_receives {
        let got = receive_n(q, if round == 1 { 2 } else { 1 }, now()).await;
        for m in got {
            if m.body == "healthy" {
                healthy = Some(m);
                continue;
            }
            assert_eq!((m.id.as_str(), m.receive_count), (id.as_str(), round), "receive {round} counts {round}");
            q.change_visibility(&m.receipt_handle, Duration::ZERO).await.expect("give it back");
        }
    }
    // Past the maximum, the next receive moves it to the dead-letter queue instead.
    assert_empty(q, "a message received max_receives times goes to the dead-letter queue").await;
    let dead = receive_n(dlq, 1, now()).await.remove(0);
    assert_eq!((dead.id.as_str(), dead.body.as_str()), (id.as_str(), "poison"), "the dead letter is intact, with its id");
    dlq.delete(&dead.receipt_handle).await.expect("delete the dead letter");
    assert_eq!(dlq.depth().await.expect("dlq depth"), 0);
    // The in-flight healthy message was not affected.
    let healthy = healthy.expect("the healthy message was received");
    assert_eq!(healthy.receive_count, 1);
    q.delete(&healthy.receipt_handle).await.expect("delete healthy");
}
