//! The roster-sync Lambda: a scheduled function over [`roster_sync::handle_until`], stopping in
//! time for the invocation's deadline; it fails when any job failed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = forcelink::lambda::start().await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<EventBridgeEvent>| async move {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
        let left = Duration::from_millis(ev.context.deadline.saturating_sub(now_ms));
        let wake = forcelink::lambda::metered(deps, roster_sync::handle_until(deps, ev.payload, Instant::now() + left))
            .await
            .map_err(lambda_runtime::Error::from)?;
        tracing::info!(
            finished = wake.finished.len(),
            checkpointed = wake.checkpointed.len(),
            failed = wake.failed.len(),
            "roster-sync wake-up done"
        );
        // Failed jobs fail the invocation, so the function's Errors alarm fires.
        wake.into_result().map(|_| ()).map_err(lambda_runtime::Error::from)
    }))
    .await
}
