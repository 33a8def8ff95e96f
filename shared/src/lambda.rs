//! Lambda adapters (feature `lambda`): start-up, the HTTP bridge and the per-invocation AWS
//! call totals, so each function's `main` is a few lines over its handler.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use lambda_http::{Body, service_fn};

use crate::deps::Deps;
use crate::settings::Settings;
use crate::web::{Request, Response};

/// Reads settings, sets up JSON logs and builds the dependencies; an error names what to fix.
pub async fn start() -> Result<Deps, lambda_runtime::Error> {
    let settings = Settings::from_env().inspect_err(|e| eprintln!("forcelink: {e}"))?;
    crate::telemetry::init(settings.json_logs);
    Deps::from_settings(settings).await.map_err(|e| {
        tracing::error!(error = %e, "cannot start");
        e.into()
    })
}

/// Runs one invocation's `work` and logs the AWS calls it made, by operation, at debug.
/// A Lambda instance runs one invocation at a time, so the meter's difference is this one's.
pub async fn metered<T>(deps: &Deps, work: impl Future<Output = T>) -> T {
    let before = deps.aws_calls.snapshot();
    let out = work.await;
    let calls = deps.aws_calls.snapshot().since(&before);
    tracing::debug!(aws_calls = calls.total(), by_operation = %calls, "AWS calls this invocation");
    out
}

/// Serves a Function URL with an HTTP handler, metering each invocation.
pub async fn run_http<F, Fut>(deps: &Deps, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut + Sync,
    Fut: Future<Output = Response> + Send,
{
    let handler = &handler;
    lambda_http::run(service_fn(move |req: lambda_http::Request| async move {
        Ok::<_, Infallible>(from_response(metered(deps, handler(into_request(req))).await))
    }))
    .await
}

fn into_request(req: lambda_http::Request) -> Request {
    let (parts, body) = req.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bin) => Bytes::from(bin),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

fn from_response(resp: Response) -> lambda_http::Response<Body> {
    let (parts, body) = resp.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(bin) => Body::Binary(bin.into_bytes()),
    };
    lambda_http::Response::from_parts(parts, body)
}
