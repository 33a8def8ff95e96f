//! outbound-webhook: receives Salesforce Outbound Messages (SOAP), persists them, acknowledges,
//! and runs the site's workflow tasks. Routes: `POST /outbound/{workflow_id}/{secret}`, `/healthz`.

use forcelink::Deps;
use forcelink::web::{self, Request, Response};

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "outbound-webhook";
/// Path prefixes this function serves (besides `/healthz`).
pub const ROUTES: &[&str] = &["/outbound/"];

/// Handles one HTTP request.
pub async fn handle(_deps: &Deps, req: Request) -> Response {
    match req.uri().path() {
        "/healthz" => web::healthz(NAME),
        path => web::not_implemented(NAME, path),
    }
}
