//! "Email me a fresh link": `POST /l/renew` with a renewal ticket from a bad-link page.
//!
//! The ticket is a short-lived signed token of its own (never the link's token) naming the
//! original link (its nonce), site, recipient, target and lifetime. A fresh link always goes to
//! the recipient's stored address (the directory user's, or the workflow contact's), never to
//! one the request gives, and it works as long as the
//! original did. Refused: a revoked link (or one renewing a revoked link), a deactivated
//! person, a link renewed [`MAX_RENEWALS_PER_LINK`] times already (counted per original link,
//! so renewing a fresh link counts too), and more than [`MAX_FRESH_LINKS_PER_DAY`] fresh links
//! a person a day or one a minute. Each ticket works once. The caps are counters written in one
//! conditional transaction, so simultaneous requests cannot exceed them.

use forcelink::Deps;
use forcelink::domain::Site;
use forcelink::domain::record::Versioned;
use forcelink::links::{self, Link, LinkClaims, LinkError, RenewalTicket};
use forcelink::ports::Email;
use forcelink::web::{Request, Response};
use http::{HeaderValue, StatusCode};

use crate::clicks::{self, Quota, Taken};
use crate::pages::{self, TICKET_FIELD};
use crate::recipient::Recipient;

/// How long a renewal ticket (on a bad-link page) stays usable.
pub const TICKET_TTL_SECS: i64 = 3600;
/// How long a fresh link works when the original's token does not say when it was made.
pub const LEGACY_LIFETIME_SECS: i64 = 7 * DAY;
/// At most this many fresh links per original link, ever.
pub const MAX_RENEWALS_PER_LINK: u32 = 3;
/// At most this many fresh links per person per day (UTC).
pub const MAX_FRESH_LINKS_PER_DAY: u32 = 5;
/// At most one fresh link per person per this many seconds.
pub const COOLDOWN_SECS: i64 = 60;
/// How long a link's renewal count is remembered after its last renewal.
pub const RENEWAL_MEMORY_SECS: i64 = 400 * DAY;
/// Largest form body accepted.
const MAX_FORM: usize = 4096;
const DAY: i64 = 24 * 3600;

/// A renewal ticket for `link`, valid for [`TICKET_TTL_SECS`] from `now`.
pub fn ticket(deps: &Deps, link: &Link, now: i64) -> String {
    let ticket = RenewalTicket { id: links::new_nonce(), expires_at: now + TICKET_TTL_SECS, link: link.clone() };
    links::mint_renewal(deps.keys.as_ref(), &ticket)
}

/// Handles the renewal form.
pub async fn handle(deps: &Deps, req: &Request) -> Response {
    let now = deps.clock.epoch_secs();
    let ticket = match read_ticket(deps, req, now).await {
        Ok(ticket) => ticket,
        Err(resp) => return resp,
    };
    let link = &ticket.link.claims;
    match send_fresh_link(deps, &ticket, now).await {
        Ok(sent) => {
            tracing::info!(site = %link.site, user = %link.user, outcome = sent.name(), "fresh link request");
            answer(sent, now)
        }
        Err(e) => {
            tracing::error!(site = %link.site, error = %e, "fresh link not sent");
            let mut resp = pages::renewal(
                StatusCode::SERVICE_UNAVAILABLE,
                "We couldn't send a fresh link",
                &["Something went wrong on our side. Please go back and try again in a minute."],
            );
            resp.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("60"));
            resp
        }
    }
}

/// The verified ticket from the form, or the page refusing it.
async fn read_ticket(deps: &Deps, req: &Request, now: i64) -> Result<RenewalTicket, Response> {
    let body = req.body();
    let text = (body.len() <= MAX_FORM)
        .then(|| serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok())
        .flatten()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == TICKET_FIELD).map(|(_, v)| v));
    let again = "Please click the link in your email again, and ask for a fresh link from there.";
    let Some(text) = text else {
        return Err(pages::renewal(StatusCode::BAD_REQUEST, "We couldn't process this request", &[again]));
    };
    match links::verify_renewal(deps.keys.as_ref(), &text, now).await {
        Ok(ticket) => Ok(ticket),
        Err(LinkError::Expired(_)) => Err(pages::renewal(StatusCode::GONE, "This request has expired", &[again])),
        Err(_) => Err(pages::renewal(StatusCode::BAD_REQUEST, "We couldn't process this request", &[again])),
    }
}

/// What a renewal request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    /// Mailed to this address; the fresh link works this many seconds.
    Now { to: String, lifetime: i64 },
    /// This ticket was used, or a fresh link went out less than a minute ago.
    Already,
    /// No such site or person.
    NoOne,
    /// The person is deactivated.
    Inactive,
    /// The link (or the one it renews) was revoked.
    Revoked,
    /// The original link was renewed [`MAX_RENEWALS_PER_LINK`] times.
    LinkCap,
    /// The person got [`MAX_FRESH_LINKS_PER_DAY`] fresh links today.
    DailyCap,
}

impl Sent {
    fn name(&self) -> &'static str {
        match self {
            Sent::Now { .. } => "sent",
            Sent::Already => "already_sent",
            Sent::NoOne => "no_one",
            Sent::Inactive => "inactive",
            Sent::Revoked => "revoked",
            Sent::LinkCap => "link_cap",
            Sent::DailyCap => "daily_cap",
        }
    }
}

/// The page for each outcome.
fn answer(sent: Sent, now: i64) -> Response {
    let (status, title, lines): (StatusCode, &str, Vec<String>) = match sent {
        Sent::Now { to, lifetime } => (
            StatusCode::OK,
            "Check your email",
            vec![
                format!("We've sent a fresh link to {}. It can take a minute or two to arrive.", mask(&to)),
                format!("The new link works for {}. You can close this page.", describe_lifetime(lifetime)),
            ],
        ),
        Sent::Already => (
            StatusCode::OK,
            "Check your email",
            vec!["We've just sent you a fresh link. It can take a minute or two to arrive.".into(), "You can close this page.".into()],
        ),
        Sent::NoOne => (
            StatusCode::NOT_FOUND,
            "We can't send a fresh link",
            vec!["The account this link was made for no longer exists.".into(), "Please contact the sender.".into()],
        ),
        Sent::Inactive => (
            StatusCode::GONE,
            "We can't send a fresh link",
            vec!["The account this link was made for is no longer active.".into(), "Please contact the sender.".into()],
        ),
        Sent::Revoked => (
            StatusCode::GONE,
            "This link is no longer active",
            vec![
                "The sender has withdrawn this link, so we can't send a fresh one.".into(),
                "If you still need access, please contact the person or team who sent it to you.".into(),
            ],
        ),
        Sent::LinkCap => (
            StatusCode::GONE,
            "This link can't be renewed again",
            vec![
                format!("We've already sent {MAX_RENEWALS_PER_LINK} fresh links for it. Please use the most recent one."),
                "If you still need access, please ask the person or team who sent it for a new link.".into(),
            ],
        ),
        Sent::DailyCap => {
            let lines = vec![
                format!("For your security we send at most {MAX_FRESH_LINKS_PER_DAY} fresh links a day. Please use the most recent one."),
                "You can ask again tomorrow.".into(),
            ];
            let mut resp = pages::renewal(StatusCode::TOO_MANY_REQUESTS, "You've asked for several fresh links today", &as_strs(&lines));
            let wait = DAY - now.rem_euclid(DAY);
            resp.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(wait));
            return resp;
        }
    };
    pages::renewal(status, title, &as_strs(&lines))
}

fn as_strs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

async fn send_fresh_link(deps: &Deps, ticket: &RenewalTicket, now: i64) -> Result<Sent, RenewError> {
    let store = deps.store.as_ref();
    let claims = &ticket.link.claims;
    let ticket_key = format!("renewal~{}", ticket.id);
    if clicks::state(store, &ticket_key).await?.is_some() {
        return Ok(Sent::Already);
    }
    let Some(Versioned { record: site, .. }) = Site::load(store, &claims.site).await? else {
        return Ok(Sent::NoOne);
    };
    let recipient = match Recipient::load(store, claims).await? {
        Some(r) if r.active() => r,
        Some(_) => return Ok(Sent::Inactive),
        None => return Ok(Sent::NoOne),
    };
    if clicks::is_revoked(store, &ticket.link).await? {
        return Ok(Sent::Revoked);
    }
    match clicks::take(store, &quotas(&ticket.link, now), now).await? {
        Taken::Yes(_) => {}
        Taken::Full(0) => return Ok(Sent::LinkCap),
        Taken::Full(_) => return Ok(Sent::DailyCap),
        Taken::Cooling(_) => return Ok(Sent::Already),
    }
    let fresh = fresh_link(&ticket.link, now);
    let lifetime = fresh.claims.expires_at - now;
    let url = links::link_url(&deps.settings.public_url, &links::mint_link(deps.keys.as_ref(), &fresh));
    deps.mailer.send(&fresh_link_email(deps, &site, &recipient, &url, lifetime)).await?;
    clicks::take_once(store, &ticket_key, ticket.expires_at).await?;
    Ok(Sent::Now { to: recipient.email().to_string(), lifetime })
}

/// The counters a renewal takes from: the original link's (ever) and the person's (today).
fn quotas(link: &Link, now: i64) -> [Quota; 2] {
    let day_start = now - now.rem_euclid(DAY);
    let day = time::OffsetDateTime::from_unix_timestamp(day_start).map(|t| t.date().to_string()).unwrap_or_default();
    let claims = &link.claims;
    [
        Quota {
            name: format!("renewals~{}", link.origin()),
            cap: MAX_RENEWALS_PER_LINK,
            cooldown: None,
            expires_at: now + RENEWAL_MEMORY_SECS,
        },
        Quota {
            // Site ids hold no `~`, so the user id is the rest; a contact's list is
            // length-prefixed, so no list and id pair reads as another.
            name: match &claims.list {
                None => format!("fresh~{day}~{}~{}", claims.site, claims.user),
                Some(list) => format!("freshc~{day}~{}~{}~{list}~{}", claims.site, list.len(), claims.user),
            },
            cap: MAX_FRESH_LINKS_PER_DAY,
            cooldown: Some(COOLDOWN_SECS),
            expires_at: day_start + 2 * DAY,
        },
    ]
}

/// The fresh link: the original's recipient, target, single use and lifetime, a new nonce,
/// and the original's nonce as `renews`.
fn fresh_link(original: &Link, now: i64) -> Link {
    let lifetime = original.lifetime().unwrap_or(LEGACY_LIFETIME_SECS);
    let c = &original.claims;
    let claims =
        LinkClaims { list: c.list.clone(), ..LinkClaims::new(&c.site, &c.user, &c.target, now.saturating_add(lifetime), c.single_use) };
    Link { claims, issued_at: Some(now), renews: Some(original.origin().to_string()) }
}

/// The email carrying a fresh link that works for `lifetime` seconds.
fn fresh_link_email(deps: &Deps, site: &Site, recipient: &Recipient, url: &str, lifetime: i64) -> Email {
    let greeting = match recipient.first_name() {
        "" => "Hello,".to_string(),
        name => format!("Hi {name},"),
    };
    let works = format!("It works for {}.", describe_lifetime(lifetime));
    let text = format!(
        "{greeting}\n\nHere is the fresh link you asked for:\n\n{url}\n\n{works} If you didn't ask for it, you can ignore this email.\n\n{}\n",
        site.name
    );
    let html = format!(
        "<p>{}</p><p>Here is the fresh link you asked for:</p><p><a href=\"{}\">Open the link</a></p>\
         <p>{works} If you didn't ask for it, you can ignore this email.</p><p>{}</p>",
        forcelink::web::escape(&greeting),
        forcelink::web::escape(url),
        forcelink::web::escape(&site.name)
    );
    Email {
        from: site.sender.as_ref().map_or_else(|| deps.settings.mail_from.clone(), |s| s.from.clone()),
        reply_to: site.sender.as_ref().and_then(|s| s.reply_to.clone()),
        to: vec![recipient.email().to_string()],
        subject: format!("Your fresh link from {}", site.name),
        text,
        html: Some(html),
    }
}

/// A lifetime in words: `30 days`, `1 day`, `12 hours`, `90 minutes`, `about 26 hours`, `about 3 days`.
pub fn describe_lifetime(secs: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        s if s >= DAY && s % DAY == 0 => plural(s / DAY, "day"),
        s if s >= 3600 && s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s < 2 * 3600 => plural((s + 59) / 60, "minute"),
        s if s < 2 * DAY => format!("about {}", plural((s + 1800) / 3600, "hour")),
        s => format!("about {}", plural((s + DAY / 2) / DAY, "day")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_in_words() {
        assert_eq!(describe_lifetime(30 * DAY), "30 days");
        assert_eq!(describe_lifetime(DAY), "1 day");
        assert_eq!(describe_lifetime(12 * 3600), "12 hours");
        assert_eq!(describe_lifetime(3600), "1 hour");
        assert_eq!(describe_lifetime(90 * 60), "90 minutes");
        assert_eq!(describe_lifetime(30), "1 minute");
        assert_eq!(describe_lifetime(26 * 3600 + 5), "about 26 hours");
        assert_eq!(describe_lifetime(3 * DAY + 7), "about 3 days");
    }
}
