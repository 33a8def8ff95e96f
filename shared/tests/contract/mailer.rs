//! The `Mailer` contract: every backend (SES, SMTP, file outbox) must pass all of it.
//!
//! Each backend's test gives a way to read a sent message back as raw RFC 5322 text, by the id
//! `send` returned and by a token unique to the message (in its subject).

use forcelink::ports::mailer::{Email, MailError, Mailer};

use super::support::unique;

/// Runs every mailer check. `read_back(id, token)` returns the raw text of the message sent
/// with that id, whose subject contains `token`. `sender` is an address the backend may send
/// from (verified, on SES).
pub async fn mailer_contract(mailer: &dyn Mailer, sender: &str, mut read_back: impl AsyncFnMut(&str, &str) -> String) {
    // Text only.
    let token = unique("text");
    let email = Email {
        from: format!("Forcelink <{sender}>"),
        reply_to: None,
        to: vec!["ada@example.com".into()],
        subject: format!("Your invitation {token}"),
        text: format!("Hello Ada,\r\nplease open https://example.com/l/{token}\r\n"),
        html: None,
    };
    let id = mailer.send(&email).await.expect("send a text email");
    assert!(!id.trim().is_empty(), "send returns the transport's message id");
    let raw = read_back(&id, &token).await;
    let headers = header_block(&raw);
    assert_header(&headers, "From", sender);
    assert_header(&headers, "To", "ada@example.com");
    assert_header(&headers, "Subject", &token);
    assert_header(&headers, "Content-Type", "text/plain");
    assert!(!has_header(&headers, "Reply-To"), "no Reply-To unless asked");
    assert!(unfold(&raw).contains(&format!("https://example.com/l/{token}")), "the text body is sent");

    // Text and HTML, reply-to, several recipients.
    let token = unique("html");
    let email = Email {
        from: sender.to_string(),
        reply_to: Some("support@example.com".into()),
        to: vec!["ada@example.com".into(), "Grace Hopper <grace@example.org>".into()],
        subject: format!("Report {token}"),
        text: format!("plain part {token}"),
        html: Some(format!("<p>html part <b>{token}</b></p>")),
    };
    let id = mailer.send(&email).await.expect("send a multipart email");
    let raw = read_back(&id, &token).await;
    let headers = header_block(&raw);
    assert_header(&headers, "Reply-To", "support@example.com");
    assert_header(&headers, "To", "ada@example.com");
    assert_header(&headers, "To", "grace@example.org");
    assert_header(&headers, "Content-Type", "multipart/alternative");
    let body = unfold(&raw);
    assert!(body.contains("text/plain") && body.contains("text/html"), "both parts are there");
    assert!(body.contains(&format!("plain part {token}")), "the text part");
    assert!(body.contains(&format!("<b>{token}</b>")), "the HTML part");

    // A non-ASCII subject and body are encoded, not sent raw.
    let token = unique("utf8");
    let email = Email {
        from: sender.to_string(),
        reply_to: None,
        to: vec!["zoe@example.com".into()],
        subject: format!("Zoë’s résumé ✓ {token}"),
        text: "Grüße aus Köln ✓".into(),
        html: None,
    };
    let id = mailer.send(&email).await.expect("send a UTF-8 email");
    let raw = read_back(&id, &token).await;
    assert!(raw.is_ascii(), "the message is 7-bit clean (encoded words and a transfer encoding)");

    // Refused before sending.
    let ok = Email {
        from: sender.to_string(),
        reply_to: None,
        to: vec!["a@example.com".into()],
        subject: "s".into(),
        text: "t".into(),
        html: None,
    };
    let invalid = |r: Result<String, MailError>| matches!(r, Err(MailError::Invalid(_)));
    assert!(invalid(mailer.send(&Email { to: vec![], ..ok.clone() }).await), "no recipient");
    assert!(invalid(mailer.send(&Email { to: vec!["not an address".into()], ..ok.clone() }).await), "a bad recipient");
    assert!(invalid(mailer.send(&Email { from: "nobody".into(), ..ok.clone() }).await), "a bad sender");
    assert!(invalid(mailer.send(&Email { reply_to: Some("x@".into()), ..ok.clone() }).await), "a bad reply-to");
    assert!(
        invalid(mailer.send(&Email { to: vec!["a@example.com\r\nBcc: evil@example.com".into()], ..ok.clone() }).await),
        "header injection"
    );
}

/// The header block of a raw message, with folded lines joined.
fn header_block(raw: &str) -> Vec<(String, String)> {
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let head = head.split("\n\n").next().unwrap_or_default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    headers
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn assert_header(headers: &[(String, String)], name: &str, contains: &str) {
    assert!(
        headers.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v.contains(contains)),
        "header {name} containing {contains:?} in {headers:?}"
    );
}

/// The raw text with soft line breaks of quoted-printable and folding undone, for searching.
fn unfold(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}
