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
