//! Finishing a connect flow: who may authorize, the single write that stores the connection
//! and consumes the ticket, and what follows (the old token family revoked, the site's admin
//! told, held export events released).
//!
//! Refused, with the new token revoked: another identity than an invitation's person, an org
//! other than the connection's pinned `expected_org_id` or the org it is already bound to, a
//! ticket already consumed. The org check runs again inside the conditional write's retry
//! loop, so of two concurrent callbacks for a pending connection exactly one binds it.

use forcelink::Deps;
use forcelink::domain::Connection;
use forcelink::domain::connection::{AuthorizingUser, Change, ConnectionStatus, CredentialHealth, Environment};
use forcelink::domain::record::{Record, Versioned};
use forcelink::domain::{ids, keys};
use forcelink::ports::Email;
use forcelink::ports::store::{Cond, Item, StoreError, WriteOp};
use forcelink::salesforce::{oauth, session};
use forcelink::web::Response;
use http::StatusCode;

use crate::callback::Authorized;
use crate::flow::{FlowState, TicketRef};
use crate::pages::{self, Problem};

/// Rounds of the conditional write before giving up on a connection that keeps changing.
const WRITE_ROUNDS: usize = 8;

/// Stores the authorization, or refuses it.
pub async fn finish(deps: &Deps, flow: &FlowState, auth: Authorized) -> Result<Response, Problem> {
    let ticket = flow.ticket.as_ref().ok_or_else(|| Problem::internal("connect flow without a ticket"))?;
    let result = store(deps, flow, ticket, &auth).await;
    let previous = match result {
        Ok(previous) => previous,
        Err(problem) => {
            auth.revoke(deps).await;
            note_org_change(deps, flow, &auth).await;
            return Err(problem);
        }
    };
    deps.salesforce.forget(&flow.site, &flow.connection);
    tracing::info!(site = %flow.site, connection = %flow.connection, org = %auth.org_id, user = %auth.user_id, "connection authorized");
    revoke_replaced(deps, &previous).await;
    tell_admin(deps, flow, &auth).await;
    // Export events held while the site had no live connection flow now.
    if let Err(e) = deps.queue.send(forcelink::domain::export::flush_message(&flow.site)).await {
        tracing::warn!(site = %flow.site, error = %e, "held export events not released now; `forcelink export flush` releases them");
    }
    let saved = session::load(deps, &flow.site, &flow.connection).await.map_err(|e| Problem::internal(&e.to_string()))?.record;
    let who = auth.identity.display_name.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| auth.identity.username.clone());
    let host = url::Url::parse(&auth.instance).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    Ok(pages::connected(&saved, &who, &auth.identity.username, &host))
}

/// A sandbox connection whose saved authorization Salesforce refused, authorized again from
/// another org (a sandbox refresh gives the sandbox a new org id and drops its tokens): refused
/// like any other org, but recorded so `status` and the admin's warning name it with how to
/// accept it. Any other refusal leaves the connection as it was.
async fn note_org_change(deps: &Deps, flow: &FlowState, auth: &Authorized) {
    let Ok(loaded) = session::load(deps, &flow.site, &flow.connection).await else { return };
    let conn = &loaded.record;
    let sandbox = match &conn.environment {
        Environment::Sandbox => true,
        Environment::MyDomain(url) => url.contains(".sandbox.my.salesforce.com"),
        Environment::Production => false,
    };
    if !sandbox || conn.status != ConnectionStatus::NeedsReauth {
        return;
    }
    let Some(known) = conn.org_id.clone().filter(|known| !ids::same_id(known, &auth.org_id)) else { return };
    let change = Change { from: known, to: auth.org_id.clone(), at: deps.clock.now() };
    if let Err(e) = session::update_connection(deps, &flow.site, &flow.connection, |c| c.health.org_changed = Some(change.clone())).await {
        tracing::warn!(site = %flow.site, connection = %flow.connection, error = %e, "org change not recorded");
    }
}

/// Why this authorization may not bind this connection, if it may not.
fn refusal(conn: &Connection, ticket: &TicketRef, auth: &Authorized) -> Option<Problem> {
    if let Some(person) = &ticket.bound_to {
        let same = |v: &str| v.eq_ignore_ascii_case(person);
        if !same(&auth.identity.username) && !auth.identity.email.as_deref().is_some_and(same) {
            tracing::warn!(site = %conn.site, connection = %conn.name, "invitation used by another identity: refused");
            return Some(Problem::new(
                StatusCode::FORBIDDEN,
                "This invitation is for someone else",
                "The invitation names the Salesforce user who must sign in, and you signed in as another user. Nothing was changed. Sign in as the invited user, or ask your administrator for a new invitation.",
            ));
        }
    }
    let pinned = conn.expected_org_id.as_deref().or(conn.org_id.as_deref());
    if let Some(known) = pinned
        && !ids::same_id(known, &auth.org_id)
    {
        tracing::warn!(site = %conn.site, connection = %conn.name, known = %known, got = %auth.org_id, "org mismatch: refused");
        return Some(Problem::new(
            StatusCode::CONFLICT,
            "This is a different Salesforce org",
            &format!(
                "The connection \"{}\" belongs to org {known}, but you signed in to org {}. Nothing was changed. Sign in to the right org (or sandbox), or ask your administrator.",
                conn.name, auth.org_id
            ),
        ));
    }
    None
}

fn already_used() -> Problem {
    Problem::new(
        StatusCode::GONE,
        "This link was already used",
        "Salesforce was already connected with this link, and each link works once. Nothing was changed.",
    )
}

/// One transaction: the connection (under its version, org checked again) and the ticket's
/// used mark (only if absent). Returns the connection as it was before.
async fn store(deps: &Deps, flow: &FlowState, ticket: &TicketRef, auth: &Authorized) -> Result<Connection, Problem> {
    let internal = |e: &dyn std::fmt::Display| Problem::internal(&e.to_string());
    let sealed = session::seal_tokens(deps.keys.as_ref(), &flow.site, &flow.connection, &auth.tokens).await.map_err(|e| internal(&e))?;
    let mark_pk = keys::ticket_used_pk(&ticket.nonce);
    for _ in 0..WRITE_ROUNDS {
        let Versioned { record: old, version } = session::load(deps, &flow.site, &flow.connection).await.map_err(|e| internal(&e))?;
        if let Some(problem) = refusal(&old, ticket, auth) {
            return Err(problem);
        }
        let mut new = old.clone();
        authorized(&mut new, flow, auth, sealed.clone(), deps.clock.now());
        let mark = Item::new(&mark_pk, keys::TICKET_USED_SK, format!("{{\"site\":\"{}\"}}", flow.site)).with_expiry(ticket.exp);
        let ops = vec![
            WriteOp::Put { item: new.to_item().map_err(|e| internal(&e))?, cond: Cond::Version(version) },
            WriteOp::Put { item: mark, cond: Cond::NotExists },
        ];
        match deps.store.transact(ops).await {
            Ok(()) => return Ok(old),
            Err(StoreError::ConditionFailed { .. }) => {
                if deps.store.get(&mark_pk, keys::TICKET_USED_SK).await.map_err(|e| internal(&e))?.is_some() {
                    return Err(already_used());
                }
            }
            Err(e) => return Err(internal(&e)),
        }
    }
    Err(Problem::internal("the connection kept changing during the callback"))
}

/// The connection as this authorization leaves it.
fn authorized(c: &mut Connection, flow: &FlowState, auth: &Authorized, sealed: String, now: time::OffsetDateTime) {
    c.status = ConnectionStatus::Connected;
    c.environment = flow.environment.clone();
    c.org_id = Some(auth.org_id.clone());
    c.instance_url = Some(auth.instance.clone());
    c.user =
        Some(AuthorizingUser { id: auth.user_id.clone(), username: auth.identity.username.clone(), email: auth.identity.email.clone() });
    c.tokens_sealed = Some(sealed);
    c.last_verified_at = Some(now);
    c.last_refreshed_at = Some(now);
    c.health = CredentialHealth::default();
}

/// A re-authorization replaces a token family: the old one is revoked at Salesforce.
async fn revoke_replaced(deps: &Deps, previous: &Connection) {
    if previous.tokens_sealed.is_none() {
        return;
    }
    let bundle = match session::open_tokens(deps.keys.as_ref(), previous).await {
        Ok(b) => b,
        Err(e) => return tracing::warn!(site = %previous.site, connection = %previous.name, error = %e, "replaced tokens not opened"),
    };
    let login = oauth::login_base(&deps.settings, &previous.environment);
    let token = bundle.refresh_token.as_deref().unwrap_or(&bundle.access_token);
    match oauth::revoke(&deps.http, &login, token).await {
        Ok(()) => tracing::info!(site = %previous.site, connection = %previous.name, "replaced token family revoked"),
        Err(e) => tracing::warn!(site = %previous.site, connection = %previous.name, error = %e, "replaced token family not revoked"),
    }
}

/// Every (re)authorization is emailed to the site's admin.
async fn tell_admin(deps: &Deps, flow: &FlowState, auth: &Authorized) {
    let Ok(site) = crate::load_site(deps, &flow.site).await else { return };
    let Some(admin) = site.admin_email.clone() else { return };
    let text = format!(
        "Hello,\n\nThe Salesforce connection \"{}\" of {} was just authorized.\n\n\
         Signed in as: {}\nOrg: {}\nInstance: {}\n\n\
         If you did not expect this, remove the connection (`forcelink connection remove {} {}`) and tell your security team.\n",
        flow.connection, site.name, auth.identity.username, auth.org_id, auth.instance, site.id, flow.connection
    );
    let mail = Email {
        from: site.sender.as_ref().map_or_else(|| deps.settings.mail_from.clone(), |s| s.from.clone()),
        reply_to: site.sender.as_ref().and_then(|s| s.reply_to.clone()),
        to: vec![admin],
        subject: format!("Salesforce connection \"{}\" of {} authorized", flow.connection, site.name),
        text,
        html: None,
    };
    if let Err(e) = deps.mailer.send(&mail).await {
        tracing::warn!(site = %site.id, error = %e, "authorization notice not emailed");
    }
}
