//! link-redirect: resolves signed email links into the Salesforce tab for Salesforce users,
//! straight into the platform for others. Routes: `GET`/`HEAD /l/{token}`, `/healthz`.

use forcelink::Deps;
use forcelink::web::{self, Request, Response};

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "link-redirect";
/// Path prefixes this function serves (besides `/healthz`).
pub const ROUTES: &[&str] = &["/l/"];

/// Handles one HTTP request.
pub async fn handle(_deps: &Deps, req: Request) -> Response {
    match req.uri().path() {
        "/healthz" => web::healthz(NAME),
        path => web::not_implemented(NAME, path),
    }
}
