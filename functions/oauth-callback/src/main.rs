//! The oauth-callback Lambda: a Function URL over [`oauth_callback::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let deps = forcelink::lambda::start().await?;
    forcelink::lambda::run_http(&deps, |req| oauth_callback::handle(&deps, req)).await
}
