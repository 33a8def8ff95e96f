//! "Email me a fresh link": `POST /l/renew` with a renewal ticket from a bad-link page.
//!
//! The ticket is a short-lived signed token of its own (never the link's token) naming the
//! site, the user and the target. A fresh link always goes to the directory user's address,
//! never to one the request gives; each ticket works once, and each person gets at most one
//! fresh link a minute. Nothing is ever deleted.

use forcelink::Deps;
use forcelink::domain::record::{self, Versioned};
use forcelink::domain::{DirectoryUser, Site, keys};
use forcelink::links::{self, LinkClaims, LinkError};
use forcelink::ports::Email;
use forcelink::web::{Request, Response};
use http::StatusCode;

use crate::clicks;
use crate::pages::{self, TICKET_FIELD};

/// How long a renewal ticket (on a bad-link page) stays usable.
pub const TICKET_TTL_SECS: i64 = 3600;
/// How long a fresh link works.
pub const FRESH_LINK_TTL_SECS: i64 = 7 * 24 * 3600;
/// At most one fresh link per user per this many seconds.
pub const COOLDOWN_SECS: i64 = 60;
/// Largest form body accepted.
const MAX_FORM: usize = 4096;

/// A renewal ticket for the link `claims` describes, valid for [`TICKET_TTL_SECS`].
pub fn ticket(deps: &Deps, claims: &LinkClaims, now: i64) -> String {
    let ticket = LinkClaims::new(&claims.site, &claims.user, &claims.target, now + TICKET_TTL_SECS, claims.single_use);
    links::mint_renewal(deps.keys.as_ref(), &ticket)
}

/// Handles the renewal form.
pub async fn handle(deps: &Deps, req: &Request) -> Response {
    let now = deps.clock.epoch_secs();
    let body = req.body();
    let ticket = (body.len() <= MAX_FORM)
        .then(|| serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok())
        .flatten()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == TICKET_FIELD).map(|(_, v)| v));
    let claims = match ticket.as_deref().map(|t| links::verify_renewal(deps.keys.as_ref(), t, now)) {
        Some(Ok(claims)) => claims,
        Some(Err(LinkError::Expired(_))) => {
            return pages::renewal(
                StatusCode::GONE,
                "This request has expired",
                &["Please click the link in your email again, and ask for a fresh link from there."],
            );
        }
        _ => {
            return pages::renewal(
                StatusCode::BAD_REQUEST,
                "We couldn't process this request",
                &["Please click the link in your email again, and ask for a fresh link from there."],
            );
        }
    };
    match send_fresh_link(deps, &claims, now).await {
        Ok(Sent::Now(to)) => {
            tracing::info!(site = %claims.site, user = %claims.user, "fresh link sent");
            let line = format!("We've sent a fresh link to {}. It can take a minute or two to arrive.", mask(&to));
            pages::renewal(StatusCode::OK, "Check your email", &[&line, "You can close this page."])
        }
        Ok(Sent::Already) => pages::renewal(
            StatusCode::OK,
            "Check your email",
            &["We've just sent you a fresh link. It can take a minute or two to arrive.", "You can close this page."],
        ),
        Ok(Sent::NoOne) => pages::renewal(
            StatusCode::NOT_FOUND,
            "We can't send a fresh link",
            &["The account this link was made for no longer exists or is no longer active.", "Please contact the sender."],
        ),
        Err(e) => {
            tracing::error!(site = %claims.site, error = %e, "fresh link not sent");
            let mut resp = pages::renewal(
                StatusCode::SERVICE_UNAVAILABLE,
                "We couldn't send a fresh link",
                &["Something went wrong on our side. Please go back and try again in a minute."],
            );
            resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("60"));
            resp
        }
    }
}

enum Sent {
    Now(String),
    Already,
    NoOne,
}

async fn send_fresh_link(deps: &Deps, ticket: &LinkClaims, now: i64) -> Result<Sent, RenewError> {
    let store = deps.store.as_ref();
    let ticket_key = format!("renewal~{}", ticket.nonce);
    // The per-person cooldown (a conditional write) also serializes simultaneous requests; a
    // failed send can be retried once it lapses. The ticket is marked only once the mail left.
    if clicks::state(store, &ticket_key).await?.is_some()
        || !clicks::take_once(store, &format!("cooldown~{}~{}", ticket.site, ticket.user), now + COOLDOWN_SECS).await?
    {
        return Ok(Sent::Already);
    }
    let Some(Versioned { record: site, .. }) = record::load::<Site>(store, &keys::site_pk(&ticket.site), keys::SITE_SK).await? else {
        return Ok(Sent::NoOne);
    };
    let user_sk = format!("{}{}", keys::USER_PREFIX, ticket.user);
    let user = match record::load::<DirectoryUser>(store, &keys::directory_pk(&ticket.site), &user_sk).await? {
        Some(Versioned { record, .. }) if record.active => record,
        _ => return Ok(Sent::NoOne),
    };
    let fresh = LinkClaims::new(&site.id, &user.id, &ticket.target, now + FRESH_LINK_TTL_SECS, ticket.single_use);
    let url = links::link_url(&deps.settings.public_url, &links::mint(deps.keys.as_ref(), &fresh));
    let email = fresh_link_email(deps, &site, &user, &url);
    deps.mailer.send(&email).await?;
    clicks::take_once(store, &ticket_key, ticket.expires_at).await?;
    Ok(Sent::Now(user.email))
}

/// The email carrying a fresh link.
fn fresh_link_email(deps: &Deps, site: &Site, user: &DirectoryUser, url: &str) -> Email {
    let greeting = if user.first_name.is_empty() { "Hello,".to_string() } else { format!("Hi {},", user.first_name) };
    let text = format!(
        "{greeting}\n\nHere is the fresh link you asked for:\n\n{url}\n\nIt works for 7 days. If you didn't ask for it, you can ignore this email.\n\n{}\n",
        site.name
    );
    let html = format!(
        "<p>{}</p><p>Here is the fresh link you asked for:</p><p><a href=\"{}\">Open the link</a></p>\
         <p>It works for 7 days. If you didn't ask for it, you can ignore this email.</p><p>{}</p>",
        forcelink::web::escape(&greeting),
        forcelink::web::escape(url),
        forcelink::web::escape(&site.name)
    );
    Email {
        from: site.sender.as_ref().map_or_else(|| deps.settings.mail_from.clone(), |s| s.from.clone()),
        reply_to: site.sender.as_ref().and_then(|s| s.reply_to.clone()),
        to: vec![user.email.clone()],
        subject: format!("Your fresh link from {}", site.name),
        text,
        html: Some(html),
    }
}

/// `jane@acme.example` → `j•••@acme.example`.
pub fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}•••@{domain}", local.chars().next().unwrap_or('•')),
        None => "your email address".into(),
    }
}

/// Why a fresh link could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error(transparent)]
    Store(#[from] forcelink::ports::StoreError),
    #[error(transparent)]
    Record(#[from] forcelink::domain::RecordError),
    #[error(transparent)]
    Mail(#[from] forcelink::ports::MailError),
}
