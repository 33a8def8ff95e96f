//! Latest wins under concurrency: each interleaving of two exporters of one record is forced
//! with a hold point (a store wrapper that stops one exporter at a chosen store call until the
//! test lets it go), then the queue is drained and Salesforce must hold the newer event. Also:
//! distinct events of one instant, keys folded within a collections call, and the DynamoDB
//! calls per event of a full batch (the call meter).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use export_pusher::historical::{self, Quiet};
use export_pusher::ledger::{self, Rank, State};
use forcelink::Deps;
use forcelink::ports::{Cond, Index, Item, Page, Query, Receive, Store, StoreError, WriteOp};
use forcelink_stack::both_backends;
use support::{Backend, SITE, TOML, connect, pump_once, quick, result_event, scores_by_key, stack};
use tokio::sync::{Notify, Semaphore};

/// Where a hold point stops its exporter: before or after the first store call matching it.
#[derive(Clone, Copy)]
enum At {
    Before,
    After,
}

/// A store that stops once at the first call whose description matches, until released.
struct Hold {
    inner: Arc<dyn Store>,
    matches: fn(&str) -> bool,
    at: At,
    armed: AtomicBool,
    reached: Notify,
    release: Semaphore,
}

impl Hold {
    fn new(inner: Arc<dyn Store>, at: At, matches: fn(&str) -> bool) -> Arc<Hold> {
        Arc::new(Hold { inner, matches, at, armed: AtomicBool::new(true), reached: Notify::new(), release: Semaphore::new(0) })
    }

    async fn stop_if(&self, at: At, what: impl FnOnce() -> String) {
        if matches!((self.at, at), (At::Before, At::Before) | (At::After, At::After))
            && self.armed.load(Ordering::SeqCst)
            && (self.matches)(&what())
            && self.armed.swap(false, Ordering::SeqCst)
        {
            self.reached.notify_one();
            let _permit = self.release.acquire().await.expect("hold released");
        }
    }

    /// Waits until the exporter stands at the hold point (fails the test after 30 s).
    async fn reached(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.reached.notified()).await.expect("the hold point was never reached");
    }

    fn release(&self) {
        self.release.add_permits(1);
    }
}

fn describe_writes(items: &[&Item]) -> String {
    items.iter().map(|i| format!("{}/{} {}", i.pk, i.sk, i.body)).collect::<Vec<_>>().join("\n")
}

#[async_trait]
impl Store for Hold {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.stop_if(At::Before, || format!("get {pk}/{sk}")).await;
        let out = self.inner.get(pk, sk).await;
        self.stop_if(At::After, || format!("get {pk}/{sk}")).await;
        out
    }
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        self.inner.get_many(keys).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<u64, StoreError> {
        let what = format!("put {}", describe_writes(&[&item]));
        self.stop_if(At::Before, || what.clone()).await;
        let out = self.inner.put(item, cond).await;
        self.stop_if(At::After, || what).await;
        out
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.inner.delete(pk, sk, cond).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let what = format!("query {} {:?} {}", if query.index == Index::Gsi1 { "gsi1" } else { "primary" }, query.pk, query.prefix);
        self.stop_if(At::Before, || what.clone()).await;
        let out = self.inner.query(query).await;
        self.stop_if(At::After, || what).await;
        out
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let items: Vec<&Item> = ops.iter().filter_map(|op| if let WriteOp::Put { item, .. } = op { Some(item) } else { None }).collect();
        let what = format!("transact {}", describe_writes(&items));
        self.stop_if(At::Before, || what.clone()).await;
        let out = self.inner.transact(ops).await;
        self.stop_if(At::After, || what).await;
        out
    }
}

/// The held list is read after admission and before the upsert.
fn held_list(what: &str) -> bool {
    what.starts_with("query gsi1") && what.contains(&forcelink::domain::keys::export_held_index(SITE))
}

/// The write that marks an event exported.
fn settle_write(what: &str) -> bool {
    (what.starts_with("put") || what.starts_with("transact")) && what.contains("\"state\":\"exported\"")
}

/// The historical export's read of the ledger.
fn ledger_read(what: &str) -> bool {
    what.starts_with("query primary") && what.contains("EV#")
}

/// The same stack seen through a hold point.
fn held_deps(deps: &Deps, hold: &Arc<Hold>) -> Deps {
    let mut d = deps.clone();
    d.store = hold.clone();
    d
}

/// Receives every message now in the queue and runs one invocation on them with `deps`.
async fn invoke(queue_deps: &Deps, deps: Deps) -> tokio::task::JoinHandle<()> {
    let batch = queue_deps
        .queue
        .receive(Receive { visibility: Some(std::time::Duration::from_secs(60)), ..Receive::default() })
        .await
        .expect("receive");
    assert!(!batch.is_empty(), "nothing to invoke on");
    let queue = queue_deps.queue.clone();
    tokio::spawn(async move {
        let response = export_pusher::handle_with(&deps, &quick(), forcelink::queue_feed::sqs_event(&batch)).await;
        forcelink::queue_feed::settle(queue.as_ref(), &batch, &response, None).await;
    })
}

async fn send(deps: &Deps, event: &serde_json::Value) {
    export_pusher::replay::send_events(deps.queue.as_ref(), std::slice::from_ref(event)).await.expect("send");
}

/// Drains the queue, then checks Salesforce and the ledger end with the newer event.
async fn ends_with(s: &support::Stack, id: &str, score: f64) {
    let tuning = quick();
    for _ in 0..20 {
        if pump_once(&s.deps, &tuning).await == 0 && s.deps.queue.depth().await.expect("depth") == 0 {
            break;
        }
    }
    assert_eq!(scores_by_key(s, "after the race").get(id).copied(), Some(score), "Salesforce holds the newer event");
    let (entry, _) = ledger::load(s.deps.store.as_ref(), SITE, "result", id).await.expect("load").expect("entry");
    assert_eq!(entry.state, State::Exported);
    assert_eq!(entry.event["fields"]["score"].as_f64(), Some(score));
}

const OLD: &str = "2026-03-01T09:00:00Z";
const NEW: &str = "2026-03-01T10:00:00Z";

/// A admits E1 and stops; B exports E2 all through; A upserts E1 over it, then settles.
async fn newer_upserted_then_older_upserted(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let hold_a = Hold::new(s.deps.store.clone(), At::Before, held_list);
    send(&s.deps, &result_event("r1", OLD, 1.0)).await;
    let a = invoke(&s.deps, held_deps(&s.deps, &hold_a)).await;
    hold_a.reached().await;
    send(&s.deps, &result_event("r1", NEW, 2.0)).await;
    invoke(&s.deps, s.deps.clone()).await.await.expect("B");
    assert_eq!(scores_by_key(&s, "B done").get("r1").copied(), Some(2.0));
    hold_a.release();
    a.await.expect("A");
    assert_eq!(scores_by_key(&s, "A done").get("r1").copied(), Some(1.0), "the race happened: the older event landed last");
    ends_with(&s, "r1", 2.0).await;
}

/// As above, but B's settle comes after A's: B upserted E2, stops; A upserts E1 and settles.
async fn older_upserted_and_settled_before_the_newer_settles(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let hold_a = Hold::new(s.deps.store.clone(), At::Before, held_list);
    let hold_b = Hold::new(s.deps.store.clone(), At::Before, settle_write);
    send(&s.deps, &result_event("r2", OLD, 1.0)).await;
    let a = invoke(&s.deps, held_deps(&s.deps, &hold_a)).await;
    hold_a.reached().await;
    send(&s.deps, &result_event("r2", NEW, 2.0)).await;
    let b = invoke(&s.deps, held_deps(&s.deps, &hold_b)).await;
    hold_b.reached().await;
    hold_a.release();
    a.await.expect("A");
    assert_eq!(scores_by_key(&s, "A done").get("r2").copied(), Some(1.0), "the older event landed last");
    hold_b.release();
    b.await.expect("B");
    ends_with(&s, "r2", 2.0).await;
}

/// The other order: A upserts E1 and stops before settling; B exports E2 all through.
async fn older_upserted_then_newer_upserted(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let hold_a = Hold::new(s.deps.store.clone(), At::Before, settle_write);
    send(&s.deps, &result_event("r3", OLD, 1.0)).await;
    let a = invoke(&s.deps, held_deps(&s.deps, &hold_a)).await;
    hold_a.reached().await;
    send(&s.deps, &result_event("r3", NEW, 2.0)).await;
    invoke(&s.deps, s.deps.clone()).await.await.expect("B");
    hold_a.release();
    a.await.expect("A");
    ends_with(&s, "r3", 2.0).await;
}

/// A releases held E1 (read from the held list) and stops; B exports E2; A upserts E1.
async fn released_held_event_against_a_newer_event(backend: Backend) {
    let s = stack(backend, &TOML).await;
    send(&s.deps, &result_event("r4", OLD, 1.0)).await;
    pump_once(&s.deps, &quick()).await;
    assert_eq!(ledger::count(s.deps.store.as_ref(), SITE, State::Held, 10).await.expect("held"), 1);
    connect(&s, "production").await;
    let hold_a = Hold::new(s.deps.store.clone(), At::After, held_list);
    send(&s.deps, &result_event("other", NEW, 5.0)).await;
    let a = invoke(&s.deps, held_deps(&s.deps, &hold_a)).await;
    hold_a.reached().await;
    send(&s.deps, &result_event("r4", NEW, 2.0)).await;
    invoke(&s.deps, s.deps.clone()).await.await.expect("B");
    hold_a.release();
    a.await.expect("A");
    assert_eq!(scores_by_key(&s, "A done").get("r4").copied(), Some(1.0), "the released older event landed last");
    ends_with(&s, "r4", 2.0).await;
}

/// A historical export reads E1 and stops; continuous export sends E2; the Bulk row lands last.
async fn historical_row_against_a_continuous_upsert(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    send(&s.deps, &result_event("r5", OLD, 1.0)).await;
    pump_once(&s.deps, &quick()).await;
    let hold = Hold::new(s.deps.store.clone(), At::After, ledger_read);
    let deps = held_deps(&s.deps, &hold);
    let h = tokio::spawn(async move { historical::run(&deps, &quick(), SITE, None, &Quiet).await.map(|_| ()) });
    hold.reached().await;
    send(&s.deps, &result_event("r5", NEW, 2.0)).await;
    invoke(&s.deps, s.deps.clone()).await.await.expect("continuous");
    hold.release();
    h.await.expect("historical").expect("historical run");
    assert_eq!(scores_by_key(&s, "historical done").get("r5").copied(), Some(1.0), "the Bulk row landed last");
    ends_with(&s, "r5", 2.0).await;
}

/// Distinct events of one instant: the greater content hash wins, whichever comes first.
async fn distinct_events_of_one_instant_are_ranked_not_dropped(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let tuning = quick();
    for (id, first, second) in [("t1", 1.0, 2.0), ("t2", 2.0, 1.0)] {
        let (a, b) = (result_event(id, NEW, first), result_event(id, NEW, second));
        let winner =
            if Rank::of(time::OffsetDateTime::UNIX_EPOCH, &a) > Rank::of(time::OffsetDateTime::UNIX_EPOCH, &b) { first } else { second };
        send(&s.deps, &a).await;
        pump_once(&s.deps, &tuning).await;
        send(&s.deps, &b).await;
        pump_once(&s.deps, &tuning).await;
        assert_eq!(scores_by_key(&s, id).get(id).copied(), Some(winner), "{id}: the higher ranked event");
    }
    let (t1, _) = ledger::load(s.deps.store.as_ref(), SITE, "result", "t1").await.expect("load").expect("t1");
    let (t2, _) = ledger::load(s.deps.store.as_ref(), SITE, "result", "t2").await.expect("load").expect("t2");
    // Same pair of contents (ids aside): one of the two orders had to replace the first event.
    assert!(t1.state == State::Exported && t2.state == State::Exported);
}

/// Keys folded into one collections row (two kinds on one object, ids differing in case) are
/// all settled: no ledger entry stays pending.
async fn folded_keys_settle_every_entry(backend: Backend) {
    let toml = format!(
        "{}\n[[sites.exports]]\nkind = \"grade\"\nobject = \"Learning_Result__c\"\nexternal_id_field = \"External_Id__c\"\nfields = {{ Score__c = \"{{score}}\" }}\n",
        *TOML
    );
    let s = stack(backend, &toml).await;
    connect(&s, "production").await;
    let mut grade = result_event("f1", OLD, 7.0);
    grade["kind"] = "grade".into();
    let events = vec![result_event("f1", NEW, 1.0), grade, result_event("Case_1", OLD, 3.0), result_event("case_1", NEW, 4.0)];
    export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    while pump_once(&s.deps, &quick()).await > 0 {}
    let (entries, _) = ledger::page(s.deps.store.as_ref(), SITE, None, 100).await.expect("ledger");
    assert_eq!(entries.len(), 4);
    for e in &entries {
        assert_eq!(e.state, State::Exported, "{}/{} settled", e.kind, e.id);
    }
    let scores = scores_by_key(&s, "folded");
    assert_eq!(scores.get("f1").copied(), Some(1.0));
    assert_eq!(scores.values().filter(|v| **v == 4.0).count(), 1, "case_1, the newer of the two");
}

/// A full batch costs at most 0.1 DynamoDB calls per event (batch reads, transactions of 100).
async fn a_full_batch_costs_at_most_a_tenth_of_a_dynamodb_call_per_event(backend: Backend) {
    let s = stack(backend, &TOML).await;
    connect(&s, "production").await;
    let n = 1_000;
    let events: Vec<serde_json::Value> = (0..n).map(|i| result_event(&format!("m_{i}"), NEW, i as f64)).collect();
    export_pusher::replay::send_events(s.deps.queue.as_ref(), &events).await.expect("send");
    let before = s.deps.aws_calls.snapshot();
    assert!(pump_once(&s.deps, &quick()).await > 0);
    let calls = s.deps.aws_calls.snapshot().since(&before);
    let dynamo: u64 = calls.0.iter().filter(|((service, _), _)| service == "DynamoDB").map(|(_, n)| n).sum();
    assert_eq!(scores_by_key(&s, "metered").len(), n);
    let per_event = dynamo as f64 / n as f64;
    eprintln!("{backend:?}: {dynamo} DynamoDB calls for {n} events ({per_event:.3} per event): {calls}");
    if backend == Backend::Moto {
        assert!(dynamo > 0, "the meter counts DynamoDB calls");
    }
    assert!(per_event <= 0.1, "{per_event} DynamoDB calls per event: {calls}");
}

both_backends!(
    newer_upserted_then_older_upserted,
    older_upserted_and_settled_before_the_newer_settles,
    older_upserted_then_newer_upserted,
    released_held_event_against_a_newer_event,
    historical_row_against_a_continuous_upsert,
    distinct_events_of_one_instant_are_ranked_not_dropped,
    folded_keys_settle_every_entry,
    a_full_batch_costs_at_most_a_tenth_of_a_dynamodb_call_per_event,
);
