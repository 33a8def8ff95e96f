//! Feeding an SQS handler from a [`Queue`] the way Lambda's SQS event source mapping does, for
//! `forcelink dev` and tests: a received batch becomes an [`SqsEvent`], and afterwards the
//! messages the handler did not report as failed are deleted while the failed ones come back.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use crate::ports::{Message, Queue};

/// The SQS event Lambda would pass for these messages.
pub fn sqs_event(batch: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = batch
        .iter()
        .map(|m| {
            let mut msg = SqsMessage::default();
            msg.message_id = Some(m.id.clone());
            msg.receipt_handle = Some(m.receipt_handle.clone());
            msg.body = Some(m.body.clone());
            msg.attributes.insert("ApproximateReceiveCount".into(), m.receive_count.to_string());
            msg.event_source = Some("aws:sqs".into());
            msg
        })
        .collect();
    event
}

/// Deletes the messages `response` does not list as failed. A failed message comes back after
/// `retry_after` when given, else when its visibility timeout ends. A delete or visibility
/// change that fails is logged: the message then comes back, and handlers are idempotent.
pub async fn settle(queue: &dyn Queue, batch: &[Message], response: &SqsBatchResponse, retry_after: Option<Duration>) {
    for m in batch {
        let failed = response.batch_item_failures.iter().any(|f| f.item_identifier == m.id);
        let result = match (failed, retry_after) {
            (false, _) => queue.delete(&m.receipt_handle).await,
            (true, Some(after)) => queue.change_visibility(&m.receipt_handle, after).await,
            (true, None) => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, message_id = %m.id, failed, "queue settle failed; the message comes back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_look_like_lambdas() {
        let m = Message { id: "m1".into(), receipt_handle: "r1".into(), body: "{}".into(), receive_count: 2 };
        let event = sqs_event(&[m]);
        let json = serde_json::to_value(&event).unwrap();
        let record = &json["Records"][0];
        assert_eq!(record["messageId"], "m1");
        assert_eq!(record["receiptHandle"], "r1");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
    }
}
