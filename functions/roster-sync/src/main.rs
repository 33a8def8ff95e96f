//! The roster-sync Lambda: a scheduled function over [`roster_sync::handle`].

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = forcelink::lambda::start().await?;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<EventBridgeEvent>| async {
        roster_sync::handle(&deps, ev.payload).await.map_err(lambda_runtime::Error::from)
    }))
    .await
}
