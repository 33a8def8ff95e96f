//! The `Mailer` contract against every backend: the file outbox, SMTP (on aiosmtpd) and SES
//! (on moto).

#[path = "contract/mailer.rs"]
mod mailer;
#[path = "contract/support.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use forcelink::backends::outbox::OutboxMailer;
use forcelink::backends::ses::SesMailer;
use forcelink::backends::smtp::SmtpMailer;

const SENDER: &str = "noreply@forcelink.example.com";

#[tokio::test]
async fn outbox_mailer_meets_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = OutboxMailer::new(dir.path().join("outbox"));
    let read_back = async |id: &str, token: &str| {
        let files = OutboxMailer::messages(&dir.path().join("outbox")).expect("list the outbox");
        let file =
            files.iter().find(|f| f.file_name().is_some_and(|n| n.to_string_lossy().contains(id))).expect("an .eml file named by the id");
        let raw = std::fs::read_to_string(file).expect("read the .eml");
        assert!(raw.contains(token));
        raw
    };
    mailer::mailer_contract(&outbox, SENDER, read_back).await;
}

/// The message containing `token` in a Maildir (aiosmtpd writes to `new/`), waiting for it.
fn find_in_maildir(maildir: &Path, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(maildir.join(sub)).into_iter().flatten().flatten() {
                if let Ok(raw) = std::fs::read_to_string(entry.path())
                    && raw.contains(token)
                {
                    return raw;
                }
            }
        }
        assert!(Instant::now() < deadline, "no message with {token} in {}", maildir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn smtp_mailer_meets_the_contract() {
    let url = url::Url::parse(&format!("smtp://{}", support::env("FORCELINK_TEST_SMTP"))).expect("FORCELINK_TEST_SMTP is host:port");
    let maildir = std::path::PathBuf::from(support::env("FORCELINK_TEST_SMTP_MAILDIR"));
    // aiosmtpd's Mailbox handler creates the Maildir only when the directory does not exist yet.
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("Maildir subdirectories");
    }
    let smtp = SmtpMailer::new(&url).expect("SMTP mailer");
    let read_back = async |_id: &str, token: &str| find_in_maildir(&maildir, token);
    mailer::mailer_contract(&smtp, SENDER, read_back).await;
}

/// The raw message moto's SES recorded under `id` (from the test launcher's
/// `GET /forcelink-test/ses-raw/{id}`, see infra/testing/moto_serial_dynamodb.py).
async fn ses_sent_message(moto: &str, id: &str) -> String {
    let resp = reqwest::get(format!("{moto}/forcelink-test/ses-raw/{id}")).await.expect("moto answers");
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "SES recorded the message by its id {id}");
    resp.text().await.expect("the raw message")
}

#[tokio::test]
async fn ses_mailer_meets_the_contract() {
    let config = support::moto_config().await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    match ses.create_email_identity().email_identity(SENDER).send().await {
        Ok(_) => {}
        Err(e) if aws_sdk_sesv2::error::ProvideErrorMetadata::code(&e) == Some("AlreadyExistsException") => {}
        Err(e) => panic!("verify the sender: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)),
    }
    let moto = support::moto_url();
    let read_back = async |id: &str, token: &str| {
        let raw = ses_sent_message(&moto, id).await;
        assert!(raw.contains(token));
        raw
    };
    mailer::mailer_contract(&SesMailer::new(ses.clone()), SENDER, read_back).await;

    // An unverified sender is refused, not retried.
    let email = forcelink::ports::mailer::Email {
        from: "someone@unverified.example.net".into(),
        reply_to: None,
        to: vec!["a@example.com".into()],
        subject: "s".into(),
        text: "t".into(),
        html: None,
    };
    let result = forcelink::ports::mailer::Mailer::send(&SesMailer::new(ses), &email).await;
    assert!(matches!(result, Err(forcelink::ports::mailer::MailError::Invalid(_))), "an unverified sender: {result:?}");
}
