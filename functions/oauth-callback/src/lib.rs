//! oauth-callback: connects a customer's Salesforce org (OAuth 2.0 web server flow with PKCE)
//! and serves "Login with Salesforce". Routes:
//!
//! - `GET /oauth/start?ticket=…[&env=…]` → 302 to Salesforce's authorize page; only with a
//!   signed, single-use connect ticket (`forcelink connect`): anonymous calls get a 403 page
//! - `GET /oauth/invite/{token}` → the same, for an invited sync user (bound to that person)
//! - `GET /oauth/callback?code&state` (or `?error…`) → an HTML page: connected, or what went wrong
//! - `GET /sso/login?site=S&next=/path` → Salesforce (scope `openid`) → a page that POSTs the
//!   platform a signed login token
//! - `GET /.well-known/jwks.json` → the public keys that verify login tokens
//! - `GET /healthz`
//!
//! Every flow's `state` is bound to the starting browser by a cookie ([`cookie`]). Bad input
//! of any kind answers a clear HTML page, logs a line without secrets and changes no connection.

mod callback;
mod connect;
mod cookie;
pub mod flow;
mod login;
mod pages;
mod start;

use forcelink::Deps;
use forcelink::domain::site::Site;
use forcelink::web::{self, Request, Response};
use http::{HeaderValue, StatusCode, header};

use crate::pages::Problem;

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "oauth-callback";
/// Path prefixes this function serves (besides `/healthz`).
pub const ROUTES: &[&str] = &["/oauth/", "/sso/", JWKS_PATH];
/// Where the login tokens' public keys are published.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Handles one HTTP request.
pub async fn handle(deps: &Deps, req: Request) -> Response {
    let path = req.uri().path();
    let route = route_label(path);
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This address only opens in a browser.").page(route);
    }
    if framed_connect(&req) {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "Open this link in its own window",
            "Connecting Salesforce cannot happen inside another page. Open the link directly in your browser.",
        )
        .page(route);
    }
    let params: Vec<(String, String)> = req.uri().query().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let result = match path {
        "/healthz" | "/healthz/oauth-callback" => return web::healthz(NAME),
        JWKS_PATH => return jwks(deps),
        "/oauth/callback" => return callback::handle(deps, req.headers(), &params).await,
        "/oauth/start" => start::with_ticket(deps, get("ticket"), get("site"), get("connection"), get("env")).await,
        "/sso/login" => start::sso(deps, get("site"), get("next")).await,
        p if p.starts_with("/oauth/invite/") => start::invitation(deps, &p["/oauth/invite/".len()..]).await,
        _ => Err(Problem::new(StatusCode::NOT_FOUND, "Page not found", "There is nothing at this address.")),
    };
    result.unwrap_or_else(|problem| problem.page(route))
}

/// A connect flow asked for inside a frame (`Sec-Fetch-Dest: iframe`): its pages refuse framing,
/// but a redirect's headers do not stop a frame, so the first hop refuses it.
fn framed_connect(req: &Request) -> bool {
    let path = req.uri().path();
    let connect = path == "/oauth/start" || path.starts_with("/oauth/invite/");
    connect
        && req
            .headers()
            .get("sec-fetch-dest")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"iframe") || v.as_bytes().eq_ignore_ascii_case(b"frame"))
}

/// A route for log lines: never a path that carries a token.
fn route_label(path: &str) -> &str {
    if path.starts_with("/oauth/invite/") { "/oauth/invite/…" } else { path }
}

/// The JSON Web Key Set of the login tokens; cacheable for a few minutes.
fn jwks(deps: &Deps) -> Response {
    let mut resp = web::json(StatusCode::OK, &forcelink::jws::jwks(deps.keys.as_ref()));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}

/// A 302 to `to`, with the security headers of every answer.
fn redirect(to: &str) -> Result<Response, Problem> {
    let mut resp = http::Response::new(bytes::Bytes::new());
    *resp.status_mut() = StatusCode::FOUND;
    let location = HeaderValue::from_str(to).map_err(|_| Problem::internal("redirect target is not a valid header"))?;
    resp.headers_mut().insert(header::LOCATION, location);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(resp)
}

/// Loads a site for a page: unknown sites get a plain-words page.
async fn load_site(deps: &Deps, site: &str) -> Result<Site, Problem> {
    let unknown =
        || Problem::new(StatusCode::NOT_FOUND, "Unknown site", "The address names no site forcelink knows. Check the link you were given.");
    if !forcelink::domain::site::valid_site_id(site) {
        return Err(unknown());
    }
    match Site::load(deps.store.as_ref(), site).await {
        Ok(Some(v)) => Ok(v.record),
        Ok(None) => Err(unknown()),
        Err(e) => Err(Problem::internal(&format!("store: {e}"))),
    }
}
