//! oauth-callback: connects a customer's Salesforce org (OAuth 2.0 web server flow with PKCE)
//! and serves "Login with Salesforce". Routes:
//!
//! - `GET /oauth/start?site=S&connection=N&env=…[&ticket=…]` → 302 to Salesforce's authorize page
//! - `GET /oauth/invite/{token}` → the same, for an invited sync user (signed invitation)
//! - `GET /oauth/callback?code&state` (or `?error…`) → an HTML page: connected, or what went wrong
//! - `GET /sso/login?site=S&next=/path` → Salesforce (scope `openid`) → the platform's SSO URL
//! - `GET /healthz`
//!
//! Bad input of any kind answers a clear HTML page, logs a line without secrets and changes
//! no connection.

pub mod flow;
mod pages;

use forcelink::Deps;
use forcelink::domain::connection::{AuthorizingUser, ConnectionStatus, CredentialHealth, Environment};
use forcelink::domain::directory::DirectoryUser;
use forcelink::domain::ids;
use forcelink::domain::keys;
use forcelink::domain::record;
use forcelink::domain::site::Site;
use forcelink::ports::store::Query;
use forcelink::salesforce::connections::InviteClaims;
use forcelink::salesforce::oauth::{self, AppCredentials, OAuthHttp, TokenError};
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::salesforce::signed::{self, Purpose as TokenPurpose, SignedError};
use forcelink::salesforce::sso::{self, LoginClaims};
use forcelink::web::{self, Request, Response};
use http::{HeaderValue, StatusCode, header};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope, TokenResponse};

use crate::flow::{FlowState, Purpose, StateError};
use crate::pages::Problem;

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "oauth-callback";
/// Path prefixes this function serves (besides `/healthz`).
pub const ROUTES: &[&str] = &["/oauth/", "/sso/"];

/// Handles one HTTP request.
pub async fn handle(deps: &Deps, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This address only opens in a browser.").page("method");
    }
    let params: Vec<(String, String)> = req.uri().query().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let result = match path.as_str() {
        "/healthz" | "/healthz/oauth-callback" => return web::healthz(NAME),
        "/oauth/start" => start(deps, get("site"), get("connection"), get("env"), get("ticket"), None).await,
        "/oauth/callback" => callback(deps, &params).await,
        "/sso/login" => sso_login(deps, get("site"), get("next")).await,
        p if p.starts_with("/oauth/invite/") => invite(deps, &p["/oauth/invite/".len()..]).await,
        _ => Err(Problem::new(StatusCode::NOT_FOUND, "Page not found", "There is nothing at this address.")),
    };
    match result {
        Ok(resp) => resp,
        Err(problem) => problem.page(&path),
    }
}

fn redirect(to: &str) -> Result<Response, Problem> {
    let mut resp = http::Response::new(bytes::Bytes::new());
    *resp.status_mut() = StatusCode::FOUND;
    let location = HeaderValue::from_str(to).map_err(|_| Problem::internal("redirect target is not a valid header"))?;
    resp.headers_mut().insert(header::LOCATION, location);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(resp)
}

async fn load_site(deps: &Deps, site: &str) -> Result<Site, Problem> {
    if !forcelink::domain::site::valid_site_id(site) {
        return Err(Problem::bad_request("Unknown site", "The address names no site forcelink knows. Check the link you were given."));
    }
    match record::load::<Site>(deps.store.as_ref(), &keys::site_pk(site), keys::SITE_SK).await {
        Ok(Some(v)) => Ok(v.record),
        Ok(None) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Unknown site",
            "The address names no site forcelink knows. Check the link you were given.",
        )),
        Err(e) => Err(Problem::internal(&format!("store: {e}"))),
    }
}

/// A login host must be Salesforce's (or the configured login hosts, e.g. the simulator's):
/// the token call sends the client secret there.
fn trusted_environment(deps: &Deps, env: &Environment) -> bool {
    match env {
        Environment::Production | Environment::Sandbox => true,
        Environment::MyDomain(url) => {
            let Ok(u) = url::Url::parse(url) else { return false };
            let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
            let configured = [&deps.settings.salesforce.login_url, &deps.settings.salesforce.sandbox_url]
                .iter()
                .any(|l| l.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host)));
            u.scheme() == "https" && (host.ends_with(".salesforce.com") || host.ends_with(".force.com") || configured)
        }
    }
}

async fn start(
    deps: &Deps,
    site: Option<&str>,
    connection: Option<&str>,
    env: Option<&str>,
    ticket: Option<&str>,
    login_hint: Option<&str>,
) -> Result<Response, Problem> {
    let site_id = site.filter(|s| !s.is_empty()).ok_or_else(|| {
        Problem::bad_request("Which site?", "The link is missing its site. Use the link from your invitation or from `forcelink connect`.")
    })?;
    let site = load_site(deps, site_id).await?;
    let name = match connection.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => site.default_connection.clone().ok_or_else(|| {
            Problem::bad_request(
                "No connection configured",
                "This site has no Salesforce connection yet. Add one to the site configuration first.",
            )
        })?,
    };
    if let Some(ticket) = ticket {
        let claims: InviteClaims = signed::verify(deps.keys.as_ref(), TokenPurpose::Connect, ticket, deps.clock.epoch_secs())
            .map_err(|e| ticket_problem(&e, &site))?;
        if claims.site != site.id || claims.connection != name {
            return Err(Problem::bad_request("This link is not valid", "The link was changed after it was made. Ask for a new one."));
        }
    }
    let conn = session::load(deps, &site.id, &name).await.map_err(|_| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Unknown connection",
            &format!("Site {} has no Salesforce connection named \"{name}\".", site.name),
        )
    })?;
    let environment = match env.filter(|e| !e.is_empty()) {
        Some(text) => Environment::parse(text).ok_or_else(|| {
            Problem::bad_request("Unknown Salesforce environment", "env must be production, sandbox or an https:// My Domain URL.")
        })?,
        None => conn.record.environment.clone(),
    };
    if !trusted_environment(deps, &environment) {
        return Err(Problem::bad_request(
            "Not a Salesforce login address",
            "A My Domain URL must be an https:// address on salesforce.com.",
        ));
    }
    let app = session::app_credentials(deps, &conn.record).await.map_err(|e| Problem::internal(&e.to_string()))?;
    redirect_to_authorize(deps, Purpose::Connect, &site.id, &name, &environment, &app, login_hint, None).await
}

#[allow(clippy::too_many_arguments)]
async fn redirect_to_authorize(
    deps: &Deps,
    purpose: Purpose,
    site: &str,
    connection: &str,
    environment: &Environment,
    app: &AppCredentials,
    login_hint: Option<&str>,
    next: Option<String>,
) -> Result<Response, Problem> {
    let login = oauth::login_base(&deps.settings, environment);
    let client = oauth::client(&deps.settings, &login, app).map_err(|e| Problem::internal(&e.to_string()))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = flow::create(deps, purpose, site, connection, environment, verifier.secret(), next)
        .await
        .map_err(|e| Problem::internal(&e.to_string()))?;
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
    redirect(url.as_str())
}

fn ticket_problem(e: &SignedError, site: &Site) -> Problem {
    let ask = match &site.admin_email {
        Some(a) => format!("Ask {a} for a new one."),
        None => "Ask your administrator for a new one.".into(),
    };
    match e {
        SignedError::Expired => {
            Problem::new(StatusCode::GONE, "This link has expired", &format!("Links to connect Salesforce work for a limited time. {ask}"))
        }
        _ => Problem::bad_request("This link is not valid", &format!("The link may have been cut short in the email. {ask}")),
    }
}

async fn invite(deps: &Deps, token: &str) -> Result<Response, Problem> {
    let claims: InviteClaims = match signed::verify(deps.keys.as_ref(), TokenPurpose::Invite, token, deps.clock.epoch_secs()) {
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
    start(deps, Some(&claims.site), Some(&claims.connection), None, None, claims.email.as_deref()).await
}

async fn sso_login(deps: &Deps, site: Option<&str>, next: Option<&str>) -> Result<Response, Problem> {
    let site_id =
        site.filter(|s| !s.is_empty()).ok_or_else(|| Problem::bad_request("Which site?", "The login link is missing its site."))?;
    let next = next.filter(|n| !n.is_empty()).unwrap_or("/");
    if !sso::safe_next(next) {
        return Err(Problem::bad_request("This login link is not valid", "The page to return to must be a page of the platform."));
    }
    let site = load_site(deps, site_id).await?;
    if site.platform_sso_url.is_none() {
        return Err(Problem::bad_request("Login with Salesforce is not set up", "This site has no platform sign-in address configured."));
    }
    let name = site
        .default_connection
        .clone()
        .ok_or_else(|| Problem::bad_request("Login with Salesforce is not set up", "This site has no Salesforce connection."))?;
    let conn = session::load(deps, &site.id, &name).await.map_err(|e| Problem::internal(&e.to_string()))?.record;
    let app = session::app_credentials(deps, &conn).await.map_err(|e| Problem::internal(&e.to_string()))?;
    redirect_to_authorize(deps, Purpose::Sso, &site.id, &name, &conn.environment, &app, None, Some(next.to_string())).await
}

async fn callback(deps: &Deps, params: &[(String, String)]) -> Result<Response, Problem> {
    let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let Some(state) = get("state") else {
        return Err(Problem::bad_request(
            "This sign-in is incomplete",
            "Salesforce sent you back without the information forcelink needs. Start again from your link.",
        ));
    };
    let (flow, verifier) = match flow::consume(deps, state).await {
        Ok(v) => v,
        Err(StateError::Unknown) => {
            return Err(Problem::bad_request(
                "This sign-in has expired",
                "Sign-ins must be finished within 10 minutes of starting, in the same browser. Start again from your link.",
            ));
        }
        Err(StateError::Replayed) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "This sign-in was already used",
                "Each sign-in works once. If you refreshed the page or pressed Back, the first attempt already finished: check with your administrator, or start again from your link.",
            ));
        }
        Err(e) => return Err(Problem::internal(&e.to_string())),
    };
    if let Some(error) = get("error") {
        let description = get("error_description").unwrap_or("");
        tracing::warn!(site = %flow.site, connection = %flow.connection, error, description, "Salesforce returned an error to the callback");
        return Err(if error == "access_denied" {
            Problem::new(
                StatusCode::FORBIDDEN,
                "Access was not allowed",
                &format!(
                    "Salesforce says: {}. Nothing was changed. To connect, start again and choose Allow.",
                    nonempty(description, "access denied")
                ),
            )
        } else {
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "Salesforce could not sign you in",
                &format!("Salesforce says: {error}: {}. Nothing was changed.", nonempty(description, "no details")),
            )
        });
    }
    let Some(code) = get("code") else {
        return Err(Problem::bad_request(
            "This sign-in is incomplete",
            "Salesforce sent no authorization code. Start again from your link.",
        ));
    };
    let conn = session::load(deps, &flow.site, &flow.connection).await.map_err(|e| Problem::internal(&e.to_string()))?.record;
    let app = session::app_credentials(deps, &conn).await.map_err(|e| Problem::internal(&e.to_string()))?;
    let login = oauth::login_base(&deps.settings, &flow.environment);
    let client = oauth::client(&deps.settings, &login, &app).map_err(|e| Problem::internal(&e.to_string()))?;
    let answer = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&OAuthHttp(deps.http.clone()))
        .await
        .map_err(oauth::token_error);
    let token = match answer {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(site = %flow.site, connection = %flow.connection, error = %e, "code exchange failed");
            let detail = match &e {
                TokenError::Unavailable(_) => "Salesforce could not be reached. Try again in a few minutes.".to_string(),
                TokenError::InvalidGrant(d) | TokenError::Refused { description: d, .. } => {
                    format!("Salesforce refused the sign-in ({}). Start again from your link.", nonempty(d, "no details"))
                }
                _ => "Salesforce's answer could not be read. Start again from your link.".to_string(),
            };
            return Err(Problem::new(StatusCode::BAD_GATEWAY, "Salesforce did not complete the sign-in", &detail));
        }
    };
    let fields = token.extra_fields();
    if !oauth::verify_signature(&app.client_secret, fields) {
        tracing::error!(site = %flow.site, connection = %flow.connection, "token response signature does not verify");
        return Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "Salesforce's answer could not be verified",
            "The answer was not signed with the app's secret. Nothing was changed. Check the app's client secret, then start again.",
        ));
    }
    let access = token.access_token().secret();
    let identity = match oauth::identity(&deps.http, &fields.id, access).await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(site = %flow.site, connection = %flow.connection, error = %e, "identity call failed");
            return Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                "Salesforce did not say who you are",
                "forcelink could not read your Salesforce identity. Nothing was changed. Try again in a few minutes.",
            ));
        }
    };
    let (Some(org_id), Some(user_id)) = (ids::to_18(&identity.organization_id), ids::to_18(&identity.user_id)) else {
        return Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "Salesforce did not say who you are",
            "The identity answer had no valid org or user id.",
        ));
    };
    if oauth::ids_from_identity_url(&fields.id).is_some_and(|(o, u)| o != org_id || u != user_id) {
        return Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "Salesforce's answer is inconsistent",
            "The identity does not match the token. Nothing was changed.",
        ));
    }
    let instance = fields.instance_url.trim_end_matches('/').to_string();
    match flow.purpose {
        Purpose::Connect => {
            finish_connect(
                deps,
                &flow,
                &conn,
                &login,
                token.refresh_token().map(|r| r.secret().clone()),
                access,
                &identity,
                &org_id,
                &user_id,
                &instance,
            )
            .await
        }
        Purpose::Sso => finish_sso(deps, &flow, &identity, &org_id, &user_id).await,
    }
}

fn nonempty<'a>(text: &'a str, fallback: &'a str) -> &'a str {
    if text.trim().is_empty() { fallback } else { text }
}

#[allow(clippy::too_many_arguments)]
async fn finish_connect(
    deps: &Deps,
    flow: &FlowState,
    conn: &forcelink::domain::Connection,
    login: &str,
    refresh: Option<String>,
    access: &str,
    identity: &oauth::Identity,
    org_id: &str,
    user_id: &str,
    instance: &str,
) -> Result<Response, Problem> {
    if let Some(known) = &conn.org_id
        && !ids::same_id(known, org_id)
    {
        tracing::warn!(site = %flow.site, connection = %flow.connection, known = %known, got = %org_id, "org mismatch: refused");
        // The new authorization is not kept: revoke it so no live token is left behind.
        let _ = oauth::revoke(&deps.http, login, refresh.as_deref().unwrap_or(access)).await;
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "This is a different Salesforce org",
            &format!(
                "The connection \"{}\" belongs to org {known}, but you signed in to org {org_id}. Nothing was changed. Sign in to the right org (or sandbox), or ask your administrator to remove the connection first.",
                flow.connection
            ),
        ));
    }
    let bundle = TokenBundle { access_token: access.to_string(), refresh_token: refresh };
    let sealed = session::seal_tokens(deps.keys.as_ref(), &flow.site, &flow.connection, &bundle)
        .await
        .map_err(|e| Problem::internal(&e.to_string()))?;
    let now = deps.clock.now();
    let user = AuthorizingUser { id: user_id.to_string(), username: identity.username.clone(), email: identity.email.clone() };
    let saved = session::update_connection(deps, &flow.site, &flow.connection, |c| {
        c.status = ConnectionStatus::Connected;
        c.environment = flow.environment.clone();
        c.org_id = Some(org_id.to_string());
        c.instance_url = Some(instance.to_string());
        c.user = Some(user.clone());
        c.tokens_sealed = Some(sealed.clone());
        c.last_verified_at = Some(now);
        c.last_refreshed_at = Some(now);
        c.health = CredentialHealth::default();
    })
    .await
    .map_err(|e| Problem::internal(&e.to_string()))?;
    deps.salesforce.forget(&flow.site, &flow.connection);
    tracing::info!(site = %flow.site, connection = %flow.connection, org = %org_id, user = %user_id, "connection authorized");
    // Export events held while the site had no live connection flow now.
    if let Err(e) = deps.queue.send(forcelink::domain::export::flush_message(&flow.site)).await {
        tracing::warn!(site = %flow.site, error = %e, "held export events not released now; `forcelink export flush` releases them");
    }
    let who = identity.display_name.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| identity.username.clone());
    let host = url::Url::parse(instance).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| instance.to_string());
    Ok(pages::connected(&saved, &who, &identity.username, &host))
}

async fn finish_sso(deps: &Deps, flow: &FlowState, identity: &oauth::Identity, org_id: &str, user_id: &str) -> Result<Response, Problem> {
    let site = load_site(deps, &flow.site).await?;
    let conns: Vec<forcelink::domain::Connection> =
        record::list(deps.store.as_ref(), Query::prefix(keys::site_pk(&site.id), keys::CONNECTION_PREFIX))
            .await
            .map_err(|e| Problem::internal(&e.to_string()))?;
    if !conns.iter().any(|c| c.org_id.as_deref().is_some_and(|o| ids::same_id(o, org_id))) {
        tracing::warn!(site = %site.id, org = %org_id, "SSO from an org the site is not connected to");
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "This Salesforce org is not connected",
            &format!("You signed in to an org that {} is not connected to. Sign in with your company's Salesforce account.", site.name),
        ));
    }
    let users: Vec<DirectoryUser> = record::list(deps.store.as_ref(), Query::prefix(keys::directory_pk(&site.id), keys::USER_PREFIX))
        .await
        .map_err(|e| Problem::internal(&e.to_string()))?;
    let email = identity.email.clone().unwrap_or_default();
    let person = users
        .iter()
        .find(|u| u.salesforce_id.as_deref().is_some_and(|s| ids::same_id(s, user_id)))
        .or_else(|| users.iter().find(|u| !email.is_empty() && u.email.eq_ignore_ascii_case(&email)));
    let Some(person) = person.filter(|u| u.active) else {
        tracing::warn!(site = %site.id, user = %user_id, "SSO: no active directory user matches");
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "We could not find your account",
            &format!("Your Salesforce user is not set up on {}'s platform yet. Ask your administrator to add you.", site.name),
        ));
    };
    let claims = LoginClaims {
        site: site.id.clone(),
        user: person.id.clone(),
        email: person.email.clone(),
        salesforce_user_id: user_id.to_string(),
        org_id: org_id.to_string(),
        nonce: flow::new_state(),
        exp: deps.clock.epoch_secs() + sso::LOGIN_TOKEN_SECS,
    };
    let token = sso::mint_login(deps.keys.as_ref(), &claims);
    let base = site.platform_sso_url.clone().unwrap_or_default();
    let mut target = url::Url::parse(&base).map_err(|_| Problem::internal("platform_sso_url does not parse"))?;
    target.query_pairs_mut().append_pair("token", &token).append_pair("next", flow.next.as_deref().unwrap_or("/"));
    tracing::info!(site = %site.id, user = %person.id, "SSO login handed to the platform");
    redirect(target.as_str())
}
