//! The link-redirect Lambda: a Function URL over [`link_redirect::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let deps = forcelink::lambda::start().await?;
    forcelink::lambda::run_http(&deps, |req| link_redirect::handle(&deps, req)).await
}
