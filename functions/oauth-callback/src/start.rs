//! Starting a flow: a connect ticket, an invitation, or "Login with Salesforce". Each ends in a
//! 302 to Salesforce's authorize page with a fresh state (stored, see [`crate::flow`]) and the
//! cookie that binds it to this browser ([`crate::cookie`]).
//!
//! A connect flow starts only from a signed ticket or invitation: without one the answer is a
//! 403 page that costs no store access and no key call. A ticket already consumed by a
//! successful callback is refused here too (the callback is what consumes it).

use forcelink::Deps;
use forcelink::domain::connection::Environment;
use forcelink::domain::keys;
use forcelink::salesforce::connections::InviteClaims;
use forcelink::salesforce::oauth::{self, AppCredentials};
use forcelink::salesforce::signed::{self, Purpose as TokenPurpose, SignedError};
use forcelink::salesforce::{hosts, session, sso};
use forcelink::web::Response;
use http::{StatusCode, header};
use oauth2::{CsrfToken, PkceCodeChallenge, Scope};

use crate::flow::{self, NewFlow, Purpose, TicketRef};
use crate::pages::Problem;
use crate::{cookie, load_site, redirect};

/// `GET /oauth/start?ticket=…`: an operator's connect URL.
pub async fn with_ticket(
    deps: &Deps,
    ticket: Option<&str>,
    site: Option<&str>,
    connection: Option<&str>,
    env: Option<&str>,
) -> Result<Response, Problem> {
    let Some(ticket) = ticket else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "This link needs an invitation",
            "Connecting Salesforce starts from a link your administrator sends you. Ask them for one.",
        ));
    };
    let claims: InviteClaims = signed::verify_fresh(deps.keys.as_ref(), TokenPurpose::Connect, ticket, deps.clock.epoch_secs())
        .await
        .map_err(|e| ticket_problem(&e))?;
    if site.is_some_and(|s| s != claims.site) || connection.is_some_and(|c| c != claims.connection) {
        return Err(Problem::bad_request("This link is not valid", "The link was changed after it was made. Ask for a new one."));
    }
    begin_connect(deps, &claims, env).await
}

/// `GET /oauth/invite/{token}`: a sync user's invitation.
pub async fn invitation(deps: &Deps, token: &str) -> Result<Response, Problem> {
    let claims: InviteClaims = match signed::verify_fresh(deps.keys.as_ref(), TokenPurpose::Invite, token, deps.clock.epoch_secs()).await {
        Ok(c) => c,
        Err(SignedError::Expired) => {
            return Err(Problem::new(
                StatusCode::GONE,
                "This invitation has expired",
                "Invitations to connect Salesforce work for 7 days. Ask your administrator to send a new one.",
            ));
        }
        Err(_) => {
            return Err(Problem::bad_request(
                "This invitation link is not valid",
                "The link may have been cut short in the email: copy the whole link, or ask for a new invitation.",
            ));
        }
    };
    begin_connect(deps, &claims, None).await
}

fn ticket_problem(e: &SignedError) -> Problem {
    match e {
        SignedError::Expired => Problem::new(
            StatusCode::GONE,
            "This link has expired",
            "Links to connect Salesforce work for a limited time. Ask your administrator for a new one.",
        ),
        _ => Problem::bad_request(
            "This link is not valid",
            "The link may have been cut short in the email. Ask your administrator for a new one.",
        ),
    }
}

async fn begin_connect(deps: &Deps, claims: &InviteClaims, env: Option<&str>) -> Result<Response, Problem> {
    let used = deps.store.get(&keys::ticket_used_pk(&claims.nonce), keys::TICKET_USED_SK).await;
    if used.map_err(|e| Problem::internal(&format!("store: {e}")))?.is_some() {
        return Err(Problem::new(
            StatusCode::GONE,
            "This link was already used",
            "Salesforce was already connected with this link, and each link works once. Ask your administrator for a new one if you need to connect again.",
        ));
    }
    let site = load_site(deps, &claims.site).await?;
    let conn = session::load(deps, &site.id, &claims.connection).await.map_err(|_| {
        Problem::new(StatusCode::NOT_FOUND, "Unknown connection", &format!("Site {} has no such Salesforce connection.", site.name))
    })?;
    let environment = match env {
        Some(text) => Environment::parse(text).ok_or_else(|| {
            Problem::bad_request("Unknown Salesforce environment", "env must be production, sandbox or an https:// My Domain URL.")
        })?,
        None => conn.record.environment.clone(),
    };
    if let Environment::MyDomain(url) = &environment
        && !hosts::is_trusted(&deps.settings, url)
    {
        return Err(Problem::bad_request(
            "Not a Salesforce login address",
            "A My Domain URL must be an https:// address on salesforce.com.",
        ));
    }
    let app = session::app_credentials(deps, &conn.record).await.map_err(|e| Problem::internal(&e.to_string()))?;
    let ticket = TicketRef { nonce: claims.nonce.clone(), exp: claims.exp, bound_to: claims.email.clone() };
    let new = NewFlow {
        purpose: Purpose::Connect,
        site: &site.id,
        connection: &claims.connection,
        environment: &environment,
        next: None,
        ticket: Some(ticket),
        frame_ancestors: None,
    };
    authorize(deps, new, &app, claims.email.as_deref()).await
}

/// `GET /sso/login?site=S&next=/path`: "Login with Salesforce" through the site's SSO org.
pub async fn sso(deps: &Deps, site: Option<&str>, next: Option<&str>) -> Result<Response, Problem> {
    let site_id = site.ok_or_else(|| Problem::bad_request("Which site?", "The login link is missing its site."))?;
    let next = next.unwrap_or("/");
    if !sso::safe_next(next) {
        return Err(Problem::bad_request("This login link is not valid", "The page to return to must be a page of the platform."));
    }
    let site = load_site(deps, site_id).await?;
    let not_set_up = |why: &str| Problem::bad_request("Login with Salesforce is not set up", why);
    if site.platform_sso_url.is_none() {
        return Err(not_set_up("This site has no platform sign-in address configured."));
    }
    let name = site.sso_connection().ok_or_else(|| not_set_up("This site has no Salesforce connection."))?.to_string();
    let conn = session::load(deps, &site.id, &name).await.map_err(|_| not_set_up("This site's Salesforce connection is missing."))?.record;
    if site.sso_org(&conn).is_none() {
        return Err(not_set_up(
            "This site's Salesforce org is not known yet: its administrator pins it (org_id) or connects it. Ask your administrator.",
        ));
    }
    let app = session::app_credentials(deps, &conn).await.map_err(|e| Problem::internal(&e.to_string()))?;
    let new = NewFlow {
        purpose: Purpose::Sso,
        site: &site.id,
        connection: &name,
        environment: &conn.environment,
        next: Some(next.to_string()),
        ticket: None,
        frame_ancestors: Some(crate::login::frame_ancestors(&site, &conn)),
    };
    authorize(deps, new, &app, None).await
}

/// Stores the flow and sends the browser to Salesforce, binding the state to it.
async fn authorize(deps: &Deps, new: NewFlow<'_>, app: &AppCredentials, login_hint: Option<&str>) -> Result<Response, Problem> {
    let login = oauth::login_base(&deps.settings, new.environment);
    let client = oauth::client(&deps.settings, &login, app).map_err(|e| Problem::internal(&e.to_string()))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let purpose = new.purpose;
    let (site, connection) = (new.site.to_string(), new.connection.to_string());
    let state = flow::create(deps, new, verifier.secret()).await.map_err(|e| Problem::internal(&format!("flow state: {e}")))?;
    let mut auth = client.authorize_url(|| CsrfToken::new(state.clone())).set_pkce_challenge(challenge);
    auth = match purpose {
        Purpose::Connect => auth.add_scope(Scope::new("api".into())).add_scope(Scope::new("refresh_token".into())),
        Purpose::Sso => auth.add_scope(Scope::new("openid".into())),
    };
    if let Some(hint) = login_hint {
        auth = auth.add_extra_param("login_hint", hint.to_string());
    }
    let (url, _) = auth.url();
    tracing::info!(site, connection, purpose = ?purpose, login = %login, "sending the browser to Salesforce");
    let mut resp = redirect(url.as_str())?;
    resp.headers_mut().append(header::SET_COOKIE, cookie::bind(&state, purpose));
    Ok(resp)
}
