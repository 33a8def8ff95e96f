//! `GET /oauth/callback`: where Salesforce sends the browser back. Checks, in order: the state
//! is bound to this browser (its cookie), then consumes it once; Salesforce's error, if any;
//! the code exchange (PKCE); the token response's signature, URLs and freshness; the
//! identity. Then the flow's purpose finishes: a connection ([`crate::connect`]) or a login
//! ([`crate::login`]). Pages never echo what Salesforce or the query said.

use forcelink::Deps;
use forcelink::domain::ids;
use forcelink::salesforce::hosts;
use forcelink::salesforce::oauth::{self, Identity, OAuthHttp, TokenError};
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::web::{self, Response};
use http::{HeaderMap, StatusCode, header};
use oauth2::{AuthorizationCode, PkceCodeVerifier, TokenResponse};

use crate::cookie;
use crate::flow::{self, FlowState, Purpose, StateError};
use crate::pages::Problem;

const ROUTE: &str = "/oauth/callback";

/// What Salesforce confirmed: the tokens and who signed in to which org.
pub struct Authorized {
    pub tokens: TokenBundle,
    pub identity: Identity,
    /// 18-char ids.
    pub org_id: String,
    pub user_id: String,
    pub instance: String,
    /// The login host the tokens came from (for revocation).
    pub login: String,
}

/// Handles the callback; every answer clears the state's cookie.
pub async fn handle(deps: &Deps, headers: &HeaderMap, params: &[(String, String)]) -> Response {
    let Some(state) = param(params, "state") else {
        return incomplete("Salesforce sent you back without the information forcelink needs. Start again from your link.").page(ROUTE);
    };
    if !cookie::matches(headers, state) {
        tracing::warn!("callback without its browser binding: refused before any store access");
        return Problem::new(
            StatusCode::FORBIDDEN,
            "This sign-in was started somewhere else",
            "Sign-ins must be finished in the browser that started them. Start again from your link in this browser.",
        )
        .page(ROUTE);
    }
    let (flow, verifier) = match flow::consume(deps, state).await {
        Ok(v) => v,
        Err(e) => return state_problem(e).page(ROUTE),
    };
    let result = match authorize(deps, &flow, &verifier, params).await {
        Ok(auth) => match flow.purpose {
            Purpose::Connect => crate::connect::finish(deps, &flow, auth).await,
            Purpose::Sso => crate::login::finish(deps, &flow, auth).await,
        },
        Err(p) => Err(p),
    };
    let mut resp = result.unwrap_or_else(|p| p.page(ROUTE));
    if let Some(ancestors) = &flow.frame_ancestors {
        web::allow_framing(&mut resp, ancestors);
    }
    resp.headers_mut().append(header::SET_COOKIE, cookie::clear(state, flow.purpose));
    resp
}

/// A non-empty query parameter.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn incomplete(detail: &str) -> Problem {
    Problem::bad_request("This sign-in is incomplete", detail)
}

fn state_problem(e: StateError) -> Problem {
    match e {
        StateError::Unknown => Problem::bad_request(
            "This sign-in has expired",
            "Sign-ins must be finished within 10 minutes of starting, in the same browser. Start again from your link.",
        ),
        StateError::Replayed => Problem::new(
            StatusCode::CONFLICT,
            "This sign-in was already used",
            "Each sign-in works once. If you refreshed the page or pressed Back, the first attempt already finished: check with your administrator, or start again from your link.",
        ),
        e => Problem::internal(&format!("flow state: {e}")),
    }
}

/// Salesforce's `error` answer, in fixed words (never its `error_description`).
fn salesforce_error(flow: &FlowState, error: &str) -> Problem {
    tracing::warn!(site = %flow.site, connection = %flow.connection, error = %error.chars().take(64).collect::<String>(), "Salesforce returned an error to the callback");
    if error == "access_denied" {
        Problem::new(
            StatusCode::FORBIDDEN,
            "Access was not allowed",
            "Salesforce says access was denied. Nothing was changed. To connect, start again and choose Allow.",
        )
    } else {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "Salesforce could not sign you in",
            "Salesforce did not complete the sign-in. Nothing was changed. Start again from your link; if it keeps happening, tell your administrator.",
        )
    }
}

fn gateway(title: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_GATEWAY, title, detail)
}

/// The code exchange and every check of its answer.
async fn authorize(deps: &Deps, flow: &FlowState, verifier: &str, params: &[(String, String)]) -> Result<Authorized, Problem> {
    if let Some(error) = param(params, "error") {
        return Err(salesforce_error(flow, error));
    }
    let code = param(params, "code").ok_or_else(|| incomplete("Salesforce sent no authorization code. Start again from your link."))?;
    let conn = session::load(deps, &flow.site, &flow.connection).await.map_err(|e| Problem::internal(&e.to_string()))?.record;
    let app = session::app_credentials(deps, &conn).await.map_err(|e| Problem::internal(&e.to_string()))?;
    let login = oauth::login_base(&deps.settings, &flow.environment);
    let client = oauth::client(&deps.settings, &login, &app).map_err(|e| Problem::internal(&e.to_string()))?;
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&OAuthHttp(deps.http.clone()))
        .await
        .map_err(oauth::token_error)
        .map_err(|e| exchange_problem(flow, &e))?;
    let fields = token.extra_fields();
    if !oauth::verify_signature(&app.client_secret, fields) {
        tracing::error!(site = %flow.site, connection = %flow.connection, "token response signature does not verify");
        return Err(gateway(
            "Salesforce's answer could not be verified",
            "The answer was not signed with the app's secret. Nothing was changed. Check the app's client secret, then start again.",
        ));
    }
    if let Err(e) = hosts::check_token_response(&deps.settings, fields, deps.clock.epoch_secs()) {
        tracing::error!(site = %flow.site, connection = %flow.connection, error = %e, "token response refused");
        return Err(gateway(
            "Salesforce's answer could not be verified",
            "The answer named an address that is not Salesforce's, or was not fresh. Nothing was changed.",
        ));
    }
    let access = token.access_token().secret().clone();
    let identity = oauth::identity(&deps.http, &fields.id, &access).await.map_err(|e| {
        tracing::warn!(site = %flow.site, connection = %flow.connection, error = %e, "identity call failed");
        gateway(
            "Salesforce did not say who you are",
            "forcelink could not read your Salesforce identity. Nothing was changed. Try again in a few minutes.",
        )
    })?;
    let (Some(org_id), Some(user_id)) = (ids::to_18(&identity.organization_id), ids::to_18(&identity.user_id)) else {
        return Err(gateway("Salesforce did not say who you are", "The identity answer had no valid org or user id."));
    };
    if oauth::ids_from_identity_url(&fields.id).is_none_or(|(o, u)| o != org_id || u != user_id) {
        return Err(gateway("Salesforce's answer is inconsistent", "The identity does not match the token. Nothing was changed."));
    }
    Ok(Authorized {
        tokens: TokenBundle { access_token: access, refresh_token: token.refresh_token().map(|r| r.secret().clone()) },
        identity,
        org_id,
        user_id,
        instance: fields.instance_url.trim_end_matches('/').to_string(),
        login,
    })
}

fn exchange_problem(flow: &FlowState, e: &TokenError) -> Problem {
    tracing::warn!(site = %flow.site, connection = %flow.connection, error = %e, "code exchange failed");
    let detail = match e {
        TokenError::Unavailable(_) | TokenError::Transport(_) => "Salesforce could not be reached. Try again in a few minutes.",
        TokenError::InvalidGrant(_) | TokenError::Refused { .. } => "Salesforce refused the sign-in. Start again from your link.",
        _ => "Salesforce's answer could not be read. Start again from your link.",
    };
    gateway("Salesforce did not complete the sign-in", detail)
}

impl Authorized {
    /// Revokes the tokens just granted (the authorization is refused, so none may stay live).
    pub async fn revoke(&self, deps: &Deps) {
        let token = self.tokens.refresh_token.as_deref().unwrap_or(&self.tokens.access_token);
        if let Err(e) = oauth::revoke(&deps.http, &self.login, token).await {
            tracing::warn!(error = %e, "refused authorization's token not revoked");
        }
    }
}
