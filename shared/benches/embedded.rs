//! Embedded backends' throughput: store put/get/query and queue send→receive→delete.
//!
//! `cargo bench -p forcelink --bench embedded`; criterion reports time per operation
//! (its throughput line gives operations per second).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use forcelink::backends::sqlite_queue::{QueueConfig, SqliteQueue};
use forcelink::backends::sqlite_store::SqliteStore;
use forcelink::ports::{Cond, Item, Query, Queue, Receive, Store};

const BODY: &str = r#"{"site":"acme","id":"0035g00000QRSTUAA2","email":"ana@example.com","fields":{"FirstName":"Ana","LastName":"Silva"}}"#;

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("store");
    rt.block_on(async {
        for i in 0..1000 {
            store.put(Item::new("bench", format!("q#{i:05}"), BODY), Cond::Always).await.expect("seed");
        }
    });
    let mut group = c.benchmark_group("embedded_store");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("put", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(store.put(Item::new("bench", format!("p#{}", i % 10_000), BODY), Cond::Always)).expect("put")
        })
    });
    group.bench_function("conditional_put_not_exists", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(store.put(Item::new("bench", format!("c#{i}"), BODY), Cond::NotExists)).expect("put")
        })
    });
    group.bench_function("get", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(store.get("bench", &format!("q#{:05}", i % 1000))).expect("get")
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("query_page_of_100", |b| {
        b.iter(|| rt.block_on(store.query(&Query::prefix("bench", "q#").limit(100))).expect("query"))
    });
    group.finish();
}

fn queue(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = SqliteQueue::open(&dir.path().join("queue.db"), "bench", QueueConfig::default()).expect("queue");
    let bodies: Vec<String> = (0..10).map(|_| BODY.to_string()).collect();
    let mut group = c.benchmark_group("embedded_queue");
    group.throughput(Throughput::Elements(10));
    group.bench_function("send_receive_delete_batch_of_10", |b| {
        b.iter(|| {
            rt.block_on(async {
                queue.send_batch(&bodies, Duration::ZERO).await.expect("send");
                let got = queue.receive(Receive::default()).await.expect("receive");
                for m in &got {
                    queue.delete(&m.receipt_handle).await.expect("delete");
                }
                got.len()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = store, queue
}
criterion_main!(benches);
