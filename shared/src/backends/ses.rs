//! The `Mailer` port on Amazon SES (API v2): the RFC 5322 message is built locally and sent raw,
//! so SES, SMTP and the file outbox all carry the same bytes.
//!
//! One attempt per send: the client's automatic retries are off, because a retried
//! `SendEmail` whose first answer was lost sends the email twice. A failure is classified as
//! definite (refused, throttled: not sent) or unknown (a timeout, a lost connection, a server
//! error: it may have been sent); see [`MailError`].

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{EmailContent, RawMessage};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::Blob;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ports::mailer::{Email, MailError, Mailer, connection_refused};

/// A [`Mailer`] sending through SES. The sender must be a verified identity.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    /// A mailer on this SES client, with the client's retries turned off (one attempt a send).
    pub fn new(client: Client) -> Self {
        let config = client.config().to_builder().retry_config(RetryConfig::disabled()).build();
        Self { client: Client::from_conf(config) }
    }
}

/// Classifies an SES failure: refusals that retrying will not fix are `Invalid`; throttling is
/// `Throttled`; failures before the request left (building it, connection refused) and other
/// client errors are `Transport`; everything after the request may have reached SES (a
/// timeout, a lost connection, an unreadable answer, a 5xx) is `Unknown`.
fn map_err(e: SdkError<SendEmailError, HttpResponse>) -> MailError {
    let text = || format!("SES: {}", DisplayErrorContext(&e));
    match &e {
        SdkError::ConstructionFailure(_) => MailError::Transport(text()),
        SdkError::DispatchFailure(_) if connection_refused(&e) => MailError::Transport(text()),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => MailError::Unknown(text()),
        SdkError::ServiceError(service) => match e.code() {
            Some(code @ ("BadRequestException" | "MessageRejected" | "MailFromDomainNotVerifiedException" | "InvalidParameterValue")) => {
                MailError::Invalid(format!("SES {code}: {}", e.message().unwrap_or_default()))
            }
            Some("TooManyRequestsException" | "LimitExceededException" | "ThrottlingException" | "Throttling") => {
                MailError::Throttled(text())
            }
            _ if service.raw().status().is_server_error() => MailError::Unknown(text()),
            _ => MailError::Transport(text()),
        },
        _ => MailError::Unknown(text()),
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let raw = email.to_message()?.formatted();
        let raw = RawMessage::builder().data(Blob::new(raw)).build().map_err(|e| MailError::Invalid(e.to_string()))?;
        let out = self.client.send_email().content(EmailContent::builder().raw(raw).build()).send().await.map_err(map_err)?;
        let id = out.message_id().ok_or_else(|| MailError::Transport("SES returned no message id".into()))?;
        tracing::debug!(message_id = id, recipients = email.to.len(), "sent email through SES");
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An HTTP server answering every request with `status` and `body`; counts the requests.
    async fn answering(status: &'static str, body: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-amzn-errortype: {body}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{{\"message\":\"{body}\"}}",
                    body.len() + 14
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, count)
    }

    async fn send_to(url: &str) -> MailError {
        let config = crate::backends::aws::emulator_config(url).await;
        let mailer = SesMailer::new(Client::new(&config));
        let email = crate::ports::mailer::tests::email();
        mailer.send(&email).await.expect_err("the server refuses")
    }

    /// A 5xx may come after SES sent the email: unknown, and not retried by the SDK.
    #[tokio::test]
    async fn a_server_error_is_an_unknown_outcome_tried_once() {
        let (url, count) = answering("500 Internal Server Error", "InternalFailure").await;
        let e = send_to(&url).await;
        assert!(matches!(e, MailError::Unknown(_)), "{e:?}");
        assert_eq!(count.load(Ordering::SeqCst), 1, "one attempt: the SDK's retries are off");
    }

    /// A throttle is definite (not sent) and its own kind; also tried once.
    #[tokio::test]
    async fn a_throttle_is_definite_and_tried_once() {
        let (url, count) = answering("429 Too Many Requests", "TooManyRequestsException").await;
        let e = send_to(&url).await;
        assert!(matches!(e, MailError::Throttled(_)), "{e:?}");
        assert!(e.is_definite());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    /// Nothing listening: the connection is refused, so nothing was sent.
    #[tokio::test]
    async fn a_refused_connection_is_definite() {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let e = send_to(&format!("http://127.0.0.1:{port}")).await;
        assert!(matches!(e, MailError::Transport(_)), "{e:?}");
    }
}
