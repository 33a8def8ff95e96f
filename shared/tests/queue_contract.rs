//! The `Queue` contract against both backends: embedded SQLite and SQS (on moto).

#[path = "contract/queue.rs"]
mod queue;
#[path = "contract/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use forcelink::backends::sqlite_queue::{QueueConfig, SqliteQueue};
use forcelink::backends::sqs::{SqsQueue, create_queue_with_dlq};

const MAX_RECEIVES: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_queue_meets_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.db");
    let config = QueueConfig { visibility: Duration::from_secs(30), max_receives: MAX_RECEIVES, dead_letter: Some("work-dlq".into()) };
    let main = SqliteQueue::open(&path, "work", config).expect("open the queue");
    let dlq_config = QueueConfig { visibility: Duration::from_secs(30), max_receives: MAX_RECEIVES, dead_letter: None };
    let dlq = SqliteQueue::open(&path, "work-dlq", dlq_config).expect("open the dead-letter queue");
    queue::queue_contract(Arc::new(main), Arc::new(dlq), MAX_RECEIVES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_queue_meets_the_contract() {
    let client = aws_sdk_sqs::Client::new(&support::moto_config().await);
    let (url, dlq_url) =
        create_queue_with_dlq(&client, &support::unique("forcelink-queue"), MAX_RECEIVES).await.expect("create the queues");
    queue::queue_contract(Arc::new(SqsQueue::new(client.clone(), url)), Arc::new(SqsQueue::new(client, dlq_url)), MAX_RECEIVES).await;
}
