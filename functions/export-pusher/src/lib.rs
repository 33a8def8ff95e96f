//! export-pusher: pushes the platform's records (results, responses) from SQS into
//! Salesforce objects, and runs historical backfills.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use forcelink::Deps;

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "export-pusher";

/// Handles one SQS batch; the response lists exactly the messages to retry.
///
/// Export is not built yet: every message is reported as failed, so SQS keeps it (and
/// dead-letters it after the redrive limit) rather than losing it.
pub async fn handle(_deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let failures: Vec<BatchItemFailure> = event
        .records
        .into_iter()
        .filter_map(|m| m.message_id)
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    if !failures.is_empty() {
        tracing::warn!(held = failures.len(), "export is not implemented yet; messages stay queued");
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
