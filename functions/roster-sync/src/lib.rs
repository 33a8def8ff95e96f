//! roster-sync: on a schedule, pulls the flagged Salesforce Users, their fields and manager
//! hierarchy into the platform's directory, and runs generic SOQL inbound jobs.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use forcelink::Deps;

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "roster-sync";

/// A scheduled wake-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("roster sync is not implemented yet")]
    NotImplemented,
}

/// Handles one scheduled wake-up: runs the sync jobs that are due.
pub async fn handle(_deps: &Deps, _event: EventBridgeEvent) -> Result<(), SyncError> {
    Err(SyncError::NotImplemented)
}
