//! outbound-webhook: receives Salesforce Outbound Messages (SOAP), persists them, acknowledges,
//! and runs the site's workflow tasks from the workflow queue.
//!
//! Routes: `POST /outbound/{workflow_id}/{secret}` ([`endpoint`]), `/healthz`. Queue:
//! [`runner::handle_batch`] over the workflow queue. On Lambda one function serves both
//! ([`entry`] tells a Function URL event from an SQS event); in `forcelink dev` the router
//! calls [`handle`] and a feeder calls [`handle_batch`].

pub mod deadline;
pub mod endpoint;
pub mod entry;
pub mod lease;
pub mod reply;
pub mod runner;
pub mod soap;
pub mod tasks;

use forcelink::Deps;
use forcelink::web::{self, Request, Response};

pub use endpoint::MAX_BODY;
pub use runner::handle_batch;

/// The function's name, as in `template.yaml`.
pub const NAME: &str = "outbound-webhook";
/// Path prefixes this function serves (besides `/healthz`).
pub const ROUTES: &[&str] = &["/outbound/"];

/// Handles one HTTP request.
pub async fn handle(deps: &Deps, req: Request) -> Response {
    match req.uri().path() {
        "/healthz" => web::healthz(NAME),
        path if path.starts_with("/outbound/") => endpoint::receive(deps, req).await,
        _ => web::json_error(http::StatusCode::NOT_FOUND, "not_found", "no route here"),
    }
}
