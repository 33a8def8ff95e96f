//! The pages people see: the connected page and every error page, through
//! `forcelink::web::page` (escaped, no-store), each error logged without secrets.

use forcelink::domain::Connection;
use forcelink::web::{self, Response};
use http::StatusCode;

/// An answer for bad input or a failure: a status, a title and a plain-words explanation.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    title: String,
    detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, title: &str, detail: &str) -> Self {
        Self { status, title: title.into(), detail: detail.into() }
    }

    pub fn bad_request(title: &str, detail: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, detail)
    }

    /// Our own failure: the reason goes to the log, the page stays generic.
    pub fn internal(reason: &str) -> Self {
        tracing::error!(reason, "oauth-callback failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side",
            "Nothing was changed. Please try again in a few minutes; if it keeps happening, tell your administrator.",
        )
    }

    /// The HTML page; logs the problem (route and title, never tokens or codes).
    pub fn page(&self, route: &str) -> Response {
        if !self.status.is_server_error() {
            tracing::warn!(route, status = self.status.as_u16(), problem = %self.title, "refused");
        }
        web::page(self.status, &self.title, &[&self.detail], None)
    }
}

/// "Salesforce connected": the org, the user, the connection.
pub fn connected(conn: &Connection, who: &str, username: &str, host: &str) -> Response {
    let org = conn.org_id.as_deref().unwrap_or("?");
    let lines = [
        format!("{} is now connected to Salesforce.", conn.site),
        format!("Org: {org} on {host} ({}).", conn.environment),
        format!("Connected as: {who} ({username})."),
        format!("Connection: \"{}\". You can close this window.", conn.name),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    web::page(StatusCode::OK, "Salesforce connected", &refs, None)
}

/// The script that submits the login form: the page's one inline script, allowed by its hash.
const SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

/// OAuth's form_post pattern: a page that POSTs `fields` to `action` by itself (a button
/// does it where scripts are off), so the login token never travels in a URL.
pub fn form_post(action: &url::Url, fields: &[(&str, &str)], frame_ancestors: &str) -> Response {
    let mut body = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signing you in · forcelink</title></head><body>",
    );
    body.push_str(&format!("<form method=\"post\" action=\"{}\">", web::escape(action.as_str())));
    for (name, value) in fields {
        body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", web::escape(name), web::escape(value)));
    }
    body.push_str("<noscript><p>Signing you in…</p><button type=\"submit\">Continue</button></noscript></form>");
    body.push_str(&format!("<script>{SUBMIT_SCRIPT}</script></body></html>\n"));
    let csp = web::Csp {
        script: Some(web::csp_hash(SUBMIT_SCRIPT)),
        form_action: action.origin().ascii_serialization(),
        frame_ancestors: frame_ancestors.to_string(),
    };
    web::html(StatusCode::OK, body, &csp)
}
