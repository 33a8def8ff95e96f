//! The `Queue` port: a message queue with Amazon SQS's semantics.
//!
//! A received message stays invisible for its visibility timeout, then comes back unless it
//! was deleted by its receipt handle. Each receive counts; past the queue's maximum receive
//! count, the message moves to the dead-letter queue instead of being delivered again.

use std::time::Duration;

use async_trait::async_trait;

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
    /// A batch of the wrong size, an oversized body or a bad delay.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A receipt handle that does not name a current delivery.
    #[error("receipt handle is no longer valid")]
    InvalidReceipt,
    /// The backend failed; the operation may be retried.
    #[error("queue backend: {0}")]
    Backend(String),
}

/// Largest message body, as SQS allows (256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An SQS-like queue.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends up to [`MAX_BATCH`] bodies, each visible after `delay`; returns their ids in order.
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
        ids.pop().ok_or_else(|| QueueError::Backend("send returned no id".into()))
    }
}

/// Checks a send batch the same way on every backend.
pub fn validate_send(bodies: &[String], delay: Duration) -> Result<(), QueueError> {
    if bodies.is_empty() || bodies.len() > MAX_BATCH {
        return Err(QueueError::Invalid(format!("a batch holds 1 to {MAX_BATCH} messages, not {}", bodies.len())));
    }
    if let Some(big) = bodies.iter().find(|b| b.len() > MAX_BODY_BYTES) {
        return Err(QueueError::Invalid(format!("message of {} bytes exceeds {MAX_BODY_BYTES}", big.len())));
    }
    if delay > Duration::from_secs(900) {
        return Err(QueueError::Invalid("delay exceeds 15 minutes".into()));
    }
    Ok(())
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
