//! The `Mailer` port on Amazon SES (API v2): the RFC 5322 message is built locally and sent raw,
//! so SES, SMTP and the file outbox all carry the same bytes.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{EmailContent, RawMessage};
use aws_smithy_types::Blob;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ports::mailer::{Email, MailError, Mailer};

/// A [`Mailer`] sending through SES. The sender must be a verified identity.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    /// A mailer on this SES client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// SES errors that retrying will not fix are `Invalid`; the rest are `Transport`.
fn map_err<E, R>(e: SdkError<E, R>) -> MailError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.code() {
        Some(code @ ("BadRequestException" | "MessageRejected" | "MailFromDomainNotVerifiedException" | "InvalidParameterValue")) => {
            MailError::Invalid(format!("SES {code}: {}", e.message().unwrap_or_default()))
        }
        _ => MailError::Transport(format!("SES: {}", DisplayErrorContext(&e))),
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
