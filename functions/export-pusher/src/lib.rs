//! export-pusher: pushes the platform's records (results, responses…) from SQS into
//! Salesforce objects in real time, and replays a site's history through Bulk API 2.0.
//!
//! - [`event`] — the `forcelink.event/v1` schema and the message bodies that carry events.
//! - [`transform`] — a site's mapping applied to an event: the Salesforce record.
//! - [`ledger`] — every record's latest event and what was exported (stale-overwrite guard,
//!   held and failed lists, the history a backfill replays).
//! - [`continuous`] — one SQS batch through sObject Collections ([`collections`]).
//! - [`historical`] — a site's ledger through Bulk API 2.0 ingest jobs ([`bulk`]), resumable.
//! - [`replay`] — re-sending failed events, releasing held ones.
//! - [`budget`] — one API budget per org; [`tuning`] — knobs; [`crash`] — crash injection.
//! - [`local`] — the SQS event source mapping on the embedded queue (dev, demo, tests, benches).

pub mod budget;
pub mod bulk;
pub mod collections;
pub mod continuous;
pub mod crash;
pub mod event;
pub mod historical;
pub mod ledger;
pub mod local;
pub mod replay;
pub mod report;
pub mod status;
pub mod transform;
pub mod tuning;

use std::sync::OnceLock;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use forcelink::Deps;

pub use tuning::Tuning;

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "export-pusher";

/// Handles one SQS batch; the response lists exactly the messages to retry.
pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    static TUNING: OnceLock<Tuning> = OnceLock::new();
    continuous::handle(deps, TUNING.get_or_init(Tuning::from_env), event).await
}

/// As [`handle`] with explicit knobs (tests, benchmarks).
pub async fn handle_with(deps: &Deps, tuning: &Tuning, event: SqsEvent) -> SqsBatchResponse {
    continuous::handle(deps, tuning, event).await
}
