//! The AWS call meter on moto: it counts each call by service and operation, and the added
//! latency adds at least its amount to every call.

#[path = "contract/support.rs"]
mod support;

use std::time::{Duration, Instant};

use forcelink::backends::aws::Aws;
use forcelink::backends::dynamo::{DynamoStore, create_table};
use forcelink::backends::meter::CallMeter;
use forcelink::ports::{Cond, Item, Store};

/// A metered store on a fresh table, with `latency` added to each call.
async fn metered_store(latency: Option<Duration>) -> (CallMeter, DynamoStore) {
    let aws = Aws::new(support::moto_config().await, CallMeter::default(), latency);
    let client = aws.dynamodb();
    let table = support::unique("forcelink-meter");
    create_table(&client, &table).await.expect("create the table");
    (aws.meter, DynamoStore::new(client, table))
}

/// One put (an `UpdateItem`: the store bumps the version in place) and one get of the same item.
async fn put_then_get(store: &DynamoStore) {
    store.put(Item::new("meter#pk", "sk", "{}"), Cond::Always).await.expect("put");
    assert!(store.get("meter#pk", "sk").await.expect("get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_each_call_by_operation() {
    let (meter, store) = metered_store(None).await;
    let before = meter.snapshot();
    put_then_get(&store).await;
    let calls = meter.snapshot().since(&before);
    assert_eq!(calls.to_string(), "DynamoDB.GetItem=1 DynamoDB.UpdateItem=1");
    assert_eq!(calls.total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_latency_delays_every_call() {
    const LATENCY: Duration = Duration::from_millis(150);
    let (meter, store) = metered_store(Some(LATENCY)).await;
    let before = meter.snapshot();
    let started = Instant::now();
    put_then_get(&store).await;
    let took = started.elapsed();
    assert_eq!(meter.snapshot().since(&before).total(), 2);
    assert!(took >= 2 * LATENCY, "two calls took {took:?}, less than twice {LATENCY:?}");
}
