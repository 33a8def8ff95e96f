//! The `Queue` port: a message queue with Amazon SQS's semantics.
//!
//! A received message stays invisible for its visibility timeout, then comes back unless it
//! was deleted by its receipt handle. Each receive counts; past the queue's maximum receive
//! count, the message moves to the dead-letter queue instead of being delivered again.

use std::time::Duration;

use async_trait::async_trait;

use super::BackendError;

/// SQS's batch limit for send, receive and delete.
pub const MAX_BATCH: usize = 10;

/// A message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
    /// Valid for deleting or changing the visibility of this delivery.
    pub receipt_handle: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// What a receive asks for.
#[derive(Debug, Clone, Copy)]
pub struct Receive {
    /// 1 to [`MAX_BATCH`].
    pub max: usize,
    /// How long the received messages stay hidden; `None` for the queue's default.
    pub visibility: Option<Duration>,
    /// Long-poll up to this long when the queue is empty.
    pub wait: Duration,
}

impl Default for Receive {
    fn default() -> Self {
        Self { max: MAX_BATCH, visibility: None, wait: Duration::ZERO }
    }
}

/// Queue failures.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A batch of the wrong count or a bad delay.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A message or a batch over SQS's size limits: permanent, retrying the same request can
    /// never succeed. `what` names it (e.g. `message 3 of the batch`).
    #[error("{what} is {size} bytes, over SQS's limit of {limit} bytes")]
    TooLarge { what: String, size: usize, limit: usize },
    /// A receipt handle that does not name a current delivery.
    #[error("receipt handle is no longer valid")]
    InvalidReceipt,
    /// The backend failed; the operation may be retried.
    #[error("queue backend: {0}")]
    Backend(#[from] super::BackendError),
}

/// Largest message body: 1 MiB (1,048,576 bytes) since AWS raised it from 256 KiB in August
/// 2025. Source: the `SendMessageBatch` API reference, "The maximum allowed individual message
/// size and the maximum total payload size (the sum of the individual lengths of all of the
/// batched messages) are both 1 MiB 1,048,576 bytes",
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>.
/// A queue's `MaximumMessageSize` may be set lower; forcelink's queues use the maximum.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest `SendMessageBatch`: the sum of its bodies, 1 MiB (same source).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// An SQS-like queue.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends up to [`MAX_BATCH`] bodies of at most [`MAX_BATCH_BYTES`] together, each visible
    /// after `delay`; returns their ids in order.
    async fn send_batch(&self, bodies: &[String], delay: Duration) -> Result<Vec<String>, QueueError>;
    /// Receives up to `req.max` visible messages.
    async fn receive(&self, req: Receive) -> Result<Vec<Message>, QueueError>;
    /// Deletes a delivered message.
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Hides a delivered message for `timeout` from now (zero makes it visible at once).
    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), QueueError>;
    /// Messages waiting (visible or in flight), an estimate on SQS.
    async fn depth(&self) -> Result<u64, QueueError>;

    /// Sends one body now.
    async fn send(&self, body: String) -> Result<String, QueueError> {
        let mut ids = self.send_batch(std::slice::from_ref(&body), Duration::ZERO).await?;
        ids.pop().ok_or_else(|| QueueError::Backend(BackendError::msg("send returned no id")))
    }
}

/// Checks a send batch the same way on every backend.
pub fn validate_send(bodies: &[String], delay: Duration) -> Result<(), QueueError> {
    if bodies.is_empty() || bodies.len() > MAX_BATCH {
        return Err(QueueError::Invalid(format!("a batch holds 1 to {MAX_BATCH} messages, not {}", bodies.len())));
    }
    if let Some((i, big)) = bodies.iter().enumerate().find(|(_, b)| b.len() > MAX_BODY_BYTES) {
        let what = format!("message {} of {} in the batch", i + 1, bodies.len());
        return Err(QueueError::TooLarge { what, size: big.len(), limit: MAX_BODY_BYTES });
    }
    let total = bodies.iter().map(String::len).sum();
    if total > MAX_BATCH_BYTES {
        let what = format!("batch of {} messages", bodies.len());
        return Err(QueueError::TooLarge { what, size: total, limit: MAX_BATCH_BYTES });
    }
    if delay > Duration::from_secs(900) {
        return Err(QueueError::Invalid("delay exceeds 15 minutes".into()));
    }
    Ok(())
}

/// Splits bodies into send batches within [`MAX_BATCH`] and [`MAX_BATCH_BYTES`], in order. A
/// body over [`MAX_BODY_BYTES`] stays in a batch, for the queue to refuse.
pub fn send_batches(bodies: &[String]) -> Vec<&[String]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH || bytes + body.len() > MAX_BATCH_BYTES) {
            batches.push(&bodies[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        batches.push(&bodies[start..]);
    }
    batches
}

/// Checks a receive request the same way on every backend.
pub fn validate_receive(req: &Receive) -> Result<(), QueueError> {
    if req.max == 0 || req.max > MAX_BATCH {
        return Err(QueueError::Invalid(format!("receive asks for 1 to {MAX_BATCH} messages, not {}", req.max)));
    }
    if req.wait > Duration::from_secs(20) {
        return Err(QueueError::Invalid("wait exceeds 20 seconds".into()));
    }
    if req.visibility.is_some_and(|v| v > Duration::from_secs(12 * 3600)) {
        return Err(QueueError::Invalid("visibility exceeds 12 hours".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_total_size() {
        let small: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(send_batches(&small).iter().map(|b| b.len()).collect::<Vec<_>>(), [10, 10, 5]);
        let big: Vec<String> = (0..7).map(|_| "x".repeat(400 * 1024)).collect();
        let batches = send_batches(&big);
        assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [2, 2, 2, 1], "two 400 KiB bodies fill 1 MiB");
        assert!(batches.iter().all(|b| validate_send(b, Duration::ZERO).is_ok()));
        assert!(send_batches(&[]).is_empty());
    }

    #[test]
    fn over_limit_messages_and_batches_are_too_large() {
        let exact = vec!["x".repeat(MAX_BODY_BYTES)];
        assert!(validate_send(&exact, Duration::ZERO).is_ok(), "a body of exactly 1 MiB");
        let over = vec!["x".repeat(MAX_BODY_BYTES + 1)];
        assert!(matches!(validate_send(&over, Duration::ZERO), Err(QueueError::TooLarge { limit: MAX_BODY_BYTES, .. })));
        let pair = vec!["x".repeat(MAX_BATCH_BYTES / 2), "y".repeat(MAX_BATCH_BYTES / 2 + 1)];
        match validate_send(&pair, Duration::ZERO) {
            Err(QueueError::TooLarge { size, limit, .. }) => assert_eq!((size, limit), (MAX_BATCH_BYTES + 1, MAX_BATCH_BYTES)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}
