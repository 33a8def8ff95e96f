//! The `Mailer` port: sends one email, built as an RFC 5322 message.

use async_trait::async_trait;

/// An email to send. `html` is optional; `text` is always sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub reply_to: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Mail failures. `Invalid`, `Transport` and `Throttled` are definite: the email was not sent.
/// `Unknown` is not: it may have gone out, so sending it again may send it twice.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A bad address or an empty recipient list, or a message the service refuses: retrying
    /// will not help.
    #[error("invalid email: {0}")]
    Invalid(String),
    /// Refused or failed before the message was handed over (no connection, a temporary
    /// refusal): not sent; the send may be retried.
    #[error("mail transport: {0}")]
    Transport(String),
    /// Over the service's sending rate or quota: not sent; retry later.
    #[error("mail throttled: {0}")]
    Throttled(String),
    /// The attempt ended without a definite answer (a timeout, a connection lost after the
    /// message was written, a server error): it may or may not have been sent.
    #[error("mail outcome unknown: {0}")]
    Unknown(String),
}

impl MailError {
    /// Whether the email certainly did not go out.
    pub fn is_definite(&self) -> bool {
        !matches!(self, MailError::Unknown(_))
    }
}

/// Whether a transport error comes from a refused connection (anywhere in its chain of
/// sources): a definite failure, since nothing was sent.
pub fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        source = err.source();
    }
    false
}

/// Something that delivers email.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `email`; returns the message id the transport assigned.
    async fn send(&self, email: &Email) -> Result<String, MailError>;
}

impl Email {
    /// Builds the RFC 5322 message (multipart/alternative when there is HTML).
    pub fn to_message(&self) -> Result<lettre::Message, MailError> {
        use lettre::message::{MultiPart, SinglePart, header::ContentType};
        let parse = |a: &str| a.parse::<lettre::message::Mailbox>().map_err(|e| MailError::Invalid(format!("address {a:?}: {e}")));
        if self.to.is_empty() {
            return Err(MailError::Invalid("no recipient".into()));
        }
        let mut builder = lettre::Message::builder().from(parse(&self.from)?).subject(self.subject.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(parse(reply_to)?);
        }
        for to in &self.to {
            builder = builder.to(parse(to)?);
        }
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(self.text.clone());
        let built = match &self.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
            ),
            None => builder.singlepart(text),
        };
        built.map_err(|e| MailError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Email;

    /// A plain one-recipient email for the mailers' tests.
    pub fn email() -> Email {
        Email {
            from: "a@example.com".into(),
            reply_to: None,
            to: vec!["b@example.com".into()],
            subject: "s".into(),
            text: "t".into(),
            html: None,
        }
    }
}
