//! The outbound-webhook Lambda: its Function URL and the workflow queue, one binary.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = forcelink::lambda::start().await?;
    outbound_webhook::entry::run(&deps).await
}
