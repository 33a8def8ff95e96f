//! The SMTP `Mailer` (lettre): `smtp://host:port` for a plain relay (local test servers),
//! `smtps://host:port` for implicit TLS. Credentials, when needed, go in the URL's userinfo.
//!
//! A failure is definite when the server answered (a 4xx is a temporary refusal, a 5xx a
//! permanent one), the connection was refused, or the message was never built; any other end
//! of the conversation (a timeout, a connection lost, possibly after the message was written)
//! is an unknown outcome: the server may have taken the message.

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use url::Url;

use crate::ports::mailer::{Email, MailError, Mailer, connection_refused};

/// Sends through an SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    /// A mailer for `url` (`smtp://` or `smtps://`, host and port required).
    pub fn new(url: &Url) -> Result<Self, MailError> {
        let host = url.host_str().ok_or_else(|| MailError::Invalid("SMTP URL has no host".into()))?;
        let port = url.port().ok_or_else(|| MailError::Invalid("SMTP URL has no port".into()))?;
        let mut builder = match url.scheme() {
            "smtp" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "smtps" => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| MailError::Invalid(format!("SMTP host: {e}")))?,
            other => return Err(MailError::Invalid(format!("SMTP URL scheme {other:?}"))),
        }
        .port(port)
        .timeout(Some(std::time::Duration::from_secs(20)));
        if !url.username().is_empty() {
            let user = percent_decode(url.username());
            let pass = percent_decode(url.password().unwrap_or_default());
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(Self { transport: builder.build() })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let message = email.to_message()?;
        let response = self.transport.send(message).await.map_err(classify)?;
        Ok(response.message().collect::<Vec<_>>().join(" "))
    }
}

/// Sorts an SMTP failure into a definite or an unknown outcome (see the module docs).
fn classify(e: lettre::transport::smtp::Error) -> MailError {
    let text = format!("SMTP: {e}");
    if e.is_permanent() {
        MailError::Invalid(text)
    } else if e.is_transient() || e.is_client() || connection_refused(&e) {
        MailError::Transport(text)
    } else {
        MailError::Unknown(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listening: refused before anything was sent, a definite failure.
    #[tokio::test]
    async fn a_refused_connection_is_definite() {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let mailer = SmtpMailer::new(&Url::parse(&format!("smtp://127.0.0.1:{port}")).unwrap()).unwrap();
        let email = crate::ports::mailer::tests::email();
        let e = mailer.send(&email).await.expect_err("nothing listens");
        assert!(matches!(e, MailError::Transport(_)), "{e:?}");
    }
}
