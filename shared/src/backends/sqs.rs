//! The `Queue` port on Amazon SQS (standard queues).
//!
//! Dead-lettering is SQS's own: the queue's `RedrivePolicy` names the dead-letter queue and the
//! maximum receive count ([`create_queue_with_dlq`] sets one up for tests and local stacks).
//!
//! Messages and batches over SQS's size limits are refused before any call (the embedded
//! queue's check, [`validate_send`]); SQS's own size refusals (`BatchRequestTooLong`, a
//! message "must be shorter than" the queue's maximum) map to the same [`QueueError::TooLarge`].

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};

use crate::ports::BackendError;
use crate::ports::queue::{MAX_BATCH_BYTES, MAX_BODY_BYTES, Message, Queue, QueueError, Receive, validate_receive, validate_send};

/// A [`Queue`] on one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// The queue at `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// Error codes that mean the receipt handle names no current delivery.
const INVALID_RECEIPT_CODES: &[&str] = &[
    "ReceiptHandleIsInvalid",
    "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
];

fn map_err<E, R>(e: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.code() {
        Some(code) if INVALID_RECEIPT_CODES.contains(&code) => QueueError::InvalidReceipt,
        Some(
            "InvalidParameterValue"
            | "InvalidParameterValueException"
            | "ValidationError"
            | "InvalidBatchEntryId"
            | "BatchEntryIdsNotDistinct"
            | "EmptyBatchRequest"
            | "TooManyEntriesInBatchRequest",
        ) => QueueError::Invalid(e.message().unwrap_or("invalid request").to_string()),
        _ => QueueError::Backend(BackendError::new("SQS", e)),
    }
}

/// Whether SQS refused a size: the whole batch, or a message over the queue's maximum.
fn says_too_large(code: &str, message: &str) -> Option<bool> {
    let m = message.to_ascii_lowercase();
    match code {
        "BatchRequestTooLong" | "AWS.SimpleQueueService.BatchRequestTooLong" => Some(true),
        "MessageTooLong" | "AWS.SimpleQueueService.MessageTooLong" => Some(false),
        _ if m.contains("shorter than") || m.contains("too long") => Some(false),
        _ => None,
    }
}

/// SQS's size refusal of `bodies` as [`QueueError::TooLarge`], sized as the embedded queue counts.
fn too_large(whole_batch: bool, bodies: &[String]) -> QueueError {
    if whole_batch {
        let what = format!("batch of {} messages", bodies.len());
        return QueueError::TooLarge { what, size: bodies.iter().map(String::len).sum(), limit: MAX_BATCH_BYTES };
    }
    let (i, size) = bodies.iter().map(String::len).enumerate().max_by_key(|(_, n)| *n).unwrap_or((0, 0));
    QueueError::TooLarge { what: format!("message {} of {} in the batch", i + 1, bodies.len()), size, limit: MAX_BODY_BYTES }
}

/// Whole seconds for SQS, rounding up so a short non-zero duration is not read as zero.
fn secs(d: Duration) -> i32 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(whole).unwrap_or(i32::MAX)
}

#[async_trait]
impl Queue for SqsQueue {
    /// Sends the batch with `SendMessageBatch`. If some entries fail, the others are sent all the
    /// same and the error lists the failed entries (by index): a retry may duplicate the others,
    /// which SQS's at-least-once delivery allows anyway.
    async fn send_batch(&self, bodies: &[String], delay: Duration) -> Result<Vec<String>, QueueError> {
        validate_send(bodies, delay)?;
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(secs(delay))
                    .build()
                    .map_err(|e| QueueError::Backend(BackendError::new("SendMessageBatch entry", e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = match self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await {
            Ok(out) => out,
            Err(e) => match says_too_large(e.code().unwrap_or_default(), e.message().unwrap_or_default()) {
                Some(whole) => return Err(too_large(whole, bodies)),
                None => return Err(map_err(e)),
            },
        };
        if let Some(whole) = out.failed().iter().find_map(|f| says_too_large(f.code(), f.message().unwrap_or_default())) {
            return Err(too_large(whole, bodies));
        }
        if !out.failed().is_empty() {
            let sender_fault = out.failed().iter().any(|f| f.sender_fault());
            let detail = out
                .failed()
                .iter()
                .map(|f| format!("entry {}: {} {}", f.id(), f.code(), f.message().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; ");
            let msg = format!("{} of {} messages not sent: {detail}", out.failed().len(), bodies.len());
            return Err(if sender_fault { QueueError::Invalid(msg) } else { QueueError::Backend(BackendError::msg(msg)) });
        }
        let mut ids = vec![None; bodies.len()];
        for ok in out.successful() {
            if let Some(slot) = ok.id().parse::<usize>().ok().and_then(|i| ids.get_mut(i)) {
                *slot = Some(ok.message_id().to_string());
            }
        }
        ids.into_iter()
            .map(|id| id.ok_or_else(|| QueueError::Backend(BackendError::msg("SendMessageBatch left an entry unanswered"))))
            .collect()
    }

    async fn receive(&self, req: Receive) -> Result<Vec<Message>, QueueError> {
        validate_receive(&req)?;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(req.max as i32)
            .wait_time_seconds(secs(req.wait))
            .set_visibility_timeout(req.visibility.map(secs))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(map_err)?;
        out.messages()
            .iter()
            .map(|m| {
                let missing = |what: &str| QueueError::Backend(BackendError::msg(format!("received message lacks {what}")));
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| missing("ApproximateReceiveCount"))?;
                Ok(Message {
                    id: m.message_id().ok_or_else(|| missing("MessageId"))?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receipt_handle: m.receipt_handle().ok_or_else(|| missing("ReceiptHandle"))?.to_string(),
                    receive_count,
                })
            })
            .collect()
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client.delete_message().queue_url(&self.queue_url).receipt_handle(receipt_handle).send().await.map_err(map_err)?;
        Ok(())
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), QueueError> {
        if timeout > Duration::from_secs(12 * 3600) {
            return Err(QueueError::Invalid("visibility exceeds 12 hours".into()));
        }
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs(timeout))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Visible, in-flight and delayed messages, from SQS's approximate counts.
    async fn depth(&self) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(map_err)?;
        let attrs = out.attributes();
        let count = |name: QueueAttributeName| attrs.and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed))
    }
}

/// Creates the queue `name` and its dead-letter queue `name-dlq`, with a `RedrivePolicy` that
/// moves a message there after `max_receives` receives; returns `(queue_url, dlq_url)`.
/// Creating queues that already exist with the same attributes is not an error.
pub async fn create_queue_with_dlq(client: &Client, name: &str, max_receives: u32) -> Result<(String, String), QueueError> {
    let max_size = MAX_BODY_BYTES.to_string();
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MaximumMessageSize, &max_size)
        .send()
        .await
        .map_err(map_err)?;
    let dlq_url = dlq.queue_url().ok_or_else(|| QueueError::Backend(BackendError::msg("CreateQueue returned no URL")))?.to_string();
    let attrs =
        client.get_queue_attributes().queue_url(&dlq_url).attribute_names(QueueAttributeName::QueueArn).send().await.map_err(map_err)?;
    let dlq_arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| QueueError::Backend(BackendError::msg("dead-letter queue has no ARN")))?;
    let policy = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string() }).to_string();
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .attributes(QueueAttributeName::MaximumMessageSize, max_size)
        .send()
        .await
        .map_err(map_err)?;
    let queue_url = queue.queue_url().ok_or_else(|| QueueError::Backend(BackendError::msg("CreateQueue returned no URL")))?.to_string();
    Ok((queue_url, dlq_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_refusals_are_recognised() {
        assert_eq!(says_too_large("BatchRequestTooLong", "Batch requests cannot be longer than 1048576 bytes"), Some(true));
        let shorter = "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.";
        assert_eq!(says_too_large("InvalidParameterValue", shorter), Some(false));
        assert_eq!(says_too_large("InvalidParameterValue", "DelaySeconds is invalid"), None);
        let bodies = vec!["a".into(), "bbb".into()];
        assert!(matches!(too_large(false, &bodies), QueueError::TooLarge { size: 3, limit: MAX_BODY_BYTES, .. }));
        assert!(matches!(too_large(true, &bodies), QueueError::TooLarge { size: 4, limit: MAX_BATCH_BYTES, .. }));
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(secs(Duration::ZERO), 0);
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::from_secs(20)), 20);
        assert_eq!(secs(Duration::from_millis(1500)), 2);
    }
}
