//! The SQS event source mapping, locally: `forcelink dev`, the demo, the crash test and the
//! benchmarks feed the handler from the embedded queue as Lambda does on AWS — batches of up
//! to `BatchSize` messages gathered within `MaximumBatchingWindowInSeconds`, and only the
//! messages the handler did not report as failed are deleted.

use std::time::Duration;

use forcelink::ports::queue::MAX_BATCH;
use forcelink::ports::{Message, Queue, QueueError, Receive};
use forcelink::{Deps, queue_feed};

use crate::tuning::Tuning;

/// `BatchSize` of the export queue's event source in `template.yaml`: one invocation of
/// single-event messages fills one sObject Collections call.
pub const BATCH_SIZE: usize = 200;

/// How the local feeder gathers batches.
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    /// Messages per handler call, at most (`FORCELINK_EXPORT_BATCH_SIZE`, default [`BATCH_SIZE`]).
    pub batch_size: usize,
    /// After the first message, keep gathering this long (`FORCELINK_EXPORT_BATCH_WINDOW_MS`,
    /// default 1000, as `ExportBatchWindowSeconds`); zero takes what is ready now.
    pub window: Duration,
    /// Long poll for the first message.
    pub wait: Duration,
    /// Visibility of received messages; `None` for the queue's default (30 s embedded).
    pub visibility: Option<Duration>,
}

impl Default for Feed {
    fn default() -> Self {
        Self { batch_size: BATCH_SIZE, window: Duration::from_secs(1), wait: Duration::from_secs(1), visibility: None }
    }
}

impl Feed {
    /// From `FORCELINK_EXPORT_BATCH_SIZE` and `FORCELINK_EXPORT_BATCH_WINDOW_MS`.
    pub fn from_env() -> Self {
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
        let d = Self::default();
        Self {
            batch_size: num("FORCELINK_EXPORT_BATCH_SIZE").map_or(d.batch_size, |n| (n as usize).clamp(1, 10_000)),
            window: num("FORCELINK_EXPORT_BATCH_WINDOW_MS").map_or(d.window, Duration::from_millis),
            ..d
        }
    }

    /// Takes what is ready, without waiting (tests, draining).
    pub fn drain(batch_size: usize, visibility: Option<Duration>) -> Self {
        Self { batch_size: batch_size.max(1), window: Duration::ZERO, wait: Duration::ZERO, visibility }
    }
}

/// Receives one batch: up to `feed.batch_size` messages, ten per receive, gathered until the
/// batch is full, the window closes or (with no window) the queue has nothing ready.
pub async fn receive(queue: &dyn Queue, feed: &Feed) -> Result<Vec<Message>, QueueError> {
    let ask = |n: usize, wait: Duration| Receive { max: n.clamp(1, MAX_BATCH), visibility: feed.visibility, wait };
    let mut batch = queue.receive(ask(feed.batch_size, feed.wait)).await?;
    if batch.is_empty() {
        return Ok(batch);
    }
    let deadline = tokio::time::Instant::now() + feed.window;
    while batch.len() < feed.batch_size {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        // A failed receive here must not drop the messages already received: they would stay
        // invisible for the whole visibility timeout. Hand over what we have.
        match queue.receive(ask(feed.batch_size - batch.len(), left)).await {
            Ok(more) if !more.is_empty() => batch.extend(more),
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, received = batch.len(), "export queue receive failed while filling a batch; handling what was received");
                break;
            }
        }
    }
    Ok(batch)
}

/// One receive, handle and delete round; returns the messages received (0: nothing ready).
pub async fn pump_once(deps: &Deps, tuning: &Tuning, feed: &Feed) -> Result<usize, QueueError> {
    let batch = receive(deps.queue.as_ref(), feed).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    let response = crate::handle_with(deps, tuning, queue_feed::sqs_event(&batch)).await;
    queue_feed::settle(deps.queue.as_ref(), &batch, &response, None).await;
    Ok(batch.len())
}

/// Feeds the handler forever (`forcelink dev`).
pub async fn run(deps: &Deps, tuning: &Tuning, feed: &Feed) {
    loop {
        if let Err(e) = pump_once(deps, tuning, feed).await {
            tracing::error!(error = %e, "export queue receive failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
