//! link-redirect: resolves signed email links into the Salesforce tab for Salesforce users,
//! straight into the platform for others. Routes: `GET`/`HEAD /l/{token}`, `POST /l/renew`,
//! `/healthz`.
//!
//! A click: verify the token ([`forcelink::links::verify`]), load the site and the recipient
//! (a directory user or a workflow contact, [`recipient`]), decide the destination
//! ([`route::decide`], [`route::decide_contact`]), use up a single-use link (`GET` only, never
//! for prefetches or link scanners), record the click, answer `302`. A contact lands on the
//! platform with a short-lived signed reference ([`forcelink::contact_ref`]) added. Anything else gets a
//! friendly page ([`pages`]). The query string is never read: destinations come only from
//! the site's configured URLs. The token never reaches a log line: requests are logged under a
//! short hash of it ([`token_hash`]).

pub mod clicks;
pub mod pages;
pub mod recipient;
pub mod renew;
pub mod route;
pub mod scanners;
pub use forcelink::target;

use forcelink::Deps;
use forcelink::contact_ref::{self, CONTACT_REF_SECS, ContactClaims};
use forcelink::domain::record::Versioned;
use forcelink::domain::{Contact, Site};
use forcelink::links::{self, Link, LinkClaims, LinkError};
use forcelink::web::{self, Request, Response};
use http::Method;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::clicks::{Click, LinkState, Outcome};
use crate::pages::BadLink;
use crate::recipient::Recipient;
use crate::route::{Route, RouteError};

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "link-redirect";
/// Path prefixes this function serves (besides `/healthz`).
pub const ROUTES: &[&str] = &["/l/"];

/// Handles one HTTP request.
pub async fn handle(deps: &Deps, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/healthz" {
        return web::healthz(NAME);
    }
    if path == pages::RENEW_PATH {
        return if req.method() == Method::POST { renew::handle(deps, &req).await } else { pages::method_not_allowed("POST") };
    }
    let Some(token) = path.strip_prefix("/l/") else {
        return pages::bad_link(BadLink::Unknown, None);
    };
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return pages::method_not_allowed("GET, HEAD"),
    };
    let span = tracing::info_span!("link", link = %token_hash(token));
    let mut resp = open(deps, &req, token, head).instrument(span).await;
    if head {
        *resp.body_mut() = bytes::Bytes::new();
    }
    resp
}

/// A short, one-way name for a token in logs: the first 12 hex digits of its SHA-256.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Follows one link. `HEAD` answers as `GET` would, without using anything up or recording.
async fn open(deps: &Deps, req: &Request, token: &str, head: bool) -> Response {
    let now = deps.clock.now();
    let link = match links::verify_link_fresh(deps.keys.as_ref(), token, now.unix_timestamp()).await {
        Ok(link) => link,
        Err(LinkError::Expired(link)) => return expired(deps, req, &link, head).await,
        Err(LinkError::Malformed) => return refuse(deps, BadLink::Malformed, None),
        Err(LinkError::BadSignature) => return refuse(deps, BadLink::Tampered, None),
        Err(LinkError::UnknownKey) => return refuse(deps, BadLink::Unknown, None),
    };
    let claims = &link.claims;
    let prefetch = !head && scanners::is_prefetch_or_scanner(req.headers());
    if prefetch {
        tracing::info!(site = %claims.site, "prefetch or link scanner: nothing used");
        return pages::prefetch();
    }
    let (route, recipient) = match resolve(deps, claims).await {
        Ok(resolved) => resolved,
        Err(bad) => {
            if bad == BadLink::Inactive && !head {
                save_click(deps, Click::new(claims, now, Outcome::Inactive)).await;
            }
            return refuse(deps, bad, None);
        }
    };
    let store = deps.store.as_ref();
    let state = match clicks::is_revoked(store, &link).await {
        Ok(true) => Ok(Some(LinkState::Revoked)),
        Ok(false) if claims.single_use && !head => clicks::consume(store, claims).await,
        Ok(false) => clicks::state(store, &claims.nonce).await,
        Err(e) => Err(e),
    };
    let refused = match state {
        Ok(None) => None,
        Ok(Some(LinkState::Used)) if claims.single_use => Some((BadLink::Used, Outcome::Used)),
        Ok(Some(LinkState::Used)) => None,
        Ok(Some(LinkState::Revoked)) => Some((BadLink::Revoked, Outcome::Revoked)),
        Err(e) => {
            tracing::error!(site = %claims.site, error = %e, "link state unavailable");
            return refuse(deps, BadLink::Unavailable, None);
        }
    };
    if let Some((bad, outcome)) = refused {
        if !head {
            save_click(deps, Click::new(claims, now, outcome)).await;
        }
        return refuse(deps, bad, (bad == BadLink::Used).then_some(&link));
    }
    if !head {
        let mut click = Click::new(claims, now, Outcome::Redirected);
        click.routed_to = Some(route.kind);
        click.location = Some(route.location.clone());
        save_click(deps, click).await;
        tracing::info!(site = %claims.site, user = %claims.user, routed_to = ?route.kind, "link followed");
    }
    match &recipient {
        Recipient::Contact(contact) => pages::redirect(&with_contact_ref(deps, &route, contact, claims)),
        Recipient::User(_) => pages::redirect(&route.location),
    }
}

/// The route's location with a fresh contact reference for `contact` added (it is never
/// stored: the click keeps the location without it).
fn with_contact_ref(deps: &Deps, route: &Route, contact: &Contact, claims: &LinkClaims) -> String {
    let Ok(location) = url::Url::parse(&route.location) else {
        return route.location.clone();
    };
    let now = deps.clock.epoch_secs();
    let reference = ContactClaims {
        iss: deps.settings.public_url.as_str().trim_end_matches('/').to_string(),
        aud: forcelink::jws::origin(&location),
        sub: contact.id.clone(),
        site: contact.site.clone(),
        list: contact.list.clone(),
        email: contact.email.clone(),
        iat: now,
        exp: now + CONTACT_REF_SECS,
        jti: links::new_nonce(),
        link: claims.nonce.clone(),
    };
    contact_ref::append(&location, &contact_ref::mint(deps.keys.as_ref(), &reference)).into()
}

/// An expired link: a fresh one is offered unless the link was revoked.
async fn expired(deps: &Deps, req: &Request, link: &Link, head: bool) -> Response {
    let (bad, outcome) = match clicks::is_revoked(deps.store.as_ref(), link).await {
        Ok(false) => (BadLink::Expired, Outcome::Expired),
        Ok(true) => (BadLink::Revoked, Outcome::Revoked),
        Err(e) => {
            tracing::error!(site = %link.claims.site, error = %e, "link state unavailable");
            return refuse(deps, BadLink::Unavailable, None);
        }
    };
    if !head && !scanners::is_prefetch_or_scanner(req.headers()) {
        save_click(deps, Click::new(&link.claims, deps.clock.now(), outcome)).await;
    }
    refuse(deps, bad, (bad == BadLink::Expired).then_some(link))
}

/// Loads the site and the recipient and decides where the link goes.
async fn resolve(deps: &Deps, claims: &LinkClaims) -> Result<(Route, Recipient), BadLink> {
    let store = deps.store.as_ref();
    let unavailable = |e: forcelink::domain::RecordError| {
        tracing::error!(site = %claims.site, error = %e, "cannot load the link's site or user");
        BadLink::Unavailable
    };
    let site = match Site::load(store, &claims.site).await.map_err(unavailable)? {
        Some(Versioned { record, .. }) => record,
        None => return Err(BadLink::Unknown),
    };
    let Some(recipient) = Recipient::load(store, claims).await.map_err(unavailable)? else {
        return Err(BadLink::Unknown);
    };
    if !recipient.active() {
        return Err(BadLink::Inactive);
    }
    let route = match &recipient {
        Recipient::User(user) => route::decide(&site, user, &claims.target, &deps.settings.public_url),
        Recipient::Contact(_) => route::decide_contact(&site, &claims.target),
    };
    let route = route.map_err(|e| {
        tracing::warn!(site = %claims.site, error = %e, "link refused by routing");
        match e {
            RouteError::Target(_) => BadLink::Tampered,
            RouteError::WrongSite => BadLink::Unknown,
            RouteError::Misconfigured(_) => BadLink::Misconfigured,
        }
    })?;
    Ok((route, recipient))
}

/// The bad-link page, offering a fresh link when the link is known to be genuine.
fn refuse(deps: &Deps, bad: BadLink, link: Option<&Link>) -> Response {
    tracing::info!(outcome = bad.name(), "link refused");
    let ticket = link.map(|l| renew::ticket(deps, l, deps.clock.epoch_secs()));
    pages::bad_link(bad, ticket.as_deref())
}

async fn save_click(deps: &Deps, click: Click) {
    if let Err(e) = clicks::record(deps.store.as_ref(), &click).await {
        tracing::error!(site = %click.site, error = %e, "click not recorded");
    }
}
