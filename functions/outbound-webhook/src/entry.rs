//! The Lambda entry: one function, two event shapes. A Function URL request (payload format
//! 2.0) goes to [`crate::handle`]; an SQS event from the workflow queue goes to
//! [`crate::handle_batch`], whose partial batch failures SQS retries.

use bytes::Bytes;
use forcelink::Deps;
use lambda_http::Body;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// Runs the Lambda event loop over both handlers.
pub async fn run(deps: &Deps) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let deadline = crate::deadline::Deadline::from_epoch_ms(event.context.deadline);
        forcelink::lambda::metered(deps, dispatch(deps, event.payload, deadline)).await
    }))
    .await
}

/// Whether a Lambda event is an SQS batch.
pub fn is_sqs(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| records.first().and_then(|r| r.get("eventSource")).and_then(Value::as_str) == Some("aws:sqs"))
}

/// Handles one Lambda event of either shape.
pub async fn dispatch(deps: &Deps, payload: Value, deadline: crate::deadline::Deadline) -> Result<Value, lambda_runtime::Error> {
    if is_sqs(&payload) {
        let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(payload)?;
        return Ok(serde_json::to_value(crate::handle_batch(deps, event, deadline).await)?);
    }
    let request = lambda_http::request::from_str(&payload.to_string())?;
    let (parts, body) = request.into_parts();
    let bytes = match body {
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bin) => Bytes::from(bin),
        _ => Bytes::new(),
    };
    let response = crate::handle(deps, http::Request::from_parts(parts, bytes)).await;
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => {}
        Ok(text) => out.body = Some(Body::Text(text)),
        Err(bin) => {
            out.body = Some(Body::Binary(bin.into_bytes()));
            out.is_base64_encoded = true;
        }
    }
    Ok(serde_json::to_value(out)?)
}

#[cfg(test)]
mod tests {
    use super::is_sqs;

    #[test]
    fn tells_the_shapes_apart() {
        assert!(is_sqs(&serde_json::json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})));
        assert!(!is_sqs(&serde_json::json!({"rawPath": "/outbound/x/y", "requestContext": {}})));
    }
}
