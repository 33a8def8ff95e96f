//! The `Store` contract against both backends: embedded SQLite and DynamoDB (on moto).

#[path = "contract/store.rs"]
mod store;
#[path = "contract/support.rs"]
mod support;

use std::sync::Arc;

use forcelink::backends::dynamo::{DynamoStore, create_table};
use forcelink::backends::sqlite_store::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("open the embedded store");
    store::store_contract(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_meets_the_contract() {
    let client = aws_sdk_dynamodb::Client::new(&support::moto_config().await);
    let table = support::unique("forcelink-store");
    create_table(&client, &table).await.expect("create the table");
    create_table(&client, &table).await.expect("creating an existing table is not an error");
    store::store_contract(Arc::new(DynamoStore::new(client, table))).await;
}
