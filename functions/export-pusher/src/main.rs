//! The export-pusher Lambda: an SQS consumer over [`export_pusher::handle`].

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = forcelink::lambda::start().await?;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<SqsEvent>| async {
        Ok::<_, lambda_runtime::Error>(forcelink::lambda::metered(&deps, export_pusher::handle(&deps, ev.payload)).await)
    }))
    .await
}
