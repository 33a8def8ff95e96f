//! The outbound-webhook Lambda: a Function URL over [`outbound_webhook::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let deps = forcelink::lambda::start().await?;
    forcelink::lambda::run_http(|req| outbound_webhook::handle(&deps, req)).await
}
