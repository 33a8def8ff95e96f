//! oauth-callback: connects a customer's Salesforce org (OAuth 2.0 web server flow with PKCE)
//! and serves "Login with Salesforce". Routes: `/oauth/…`, `/sso/…`, `/healthz`.

use forcelink::Deps;
use forcelink::web::{self, Request, Response};

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "oauth-callback";
/// Path prefixes this function serves (besides `/healthz`).
pub const ROUTES: &[&str] = &["/oauth/", "/sso/"];

/// Handles one HTTP request.
pub async fn handle(_deps: &Deps, req: Request) -> Response {
    match req.uri().path() {
        "/healthz" => web::healthz(NAME),
        path => web::not_implemented(NAME, path),
    }
}
