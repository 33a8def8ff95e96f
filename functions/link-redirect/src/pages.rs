//! What people see when a link does not simply redirect: friendly, accessible pages with the
//! right status code, never the token and never an internal error.

use forcelink::web::{self, Action, Response};
use http::{HeaderValue, StatusCode, header};

/// Why a link could not be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLink {
    /// Not a token at all (often cut short by line wrapping): 400.
    Malformed,
    /// A token whose signature or target does not hold: 400.
    Tampered,
    /// Signed with an unknown key, or for a site or person we do not know: 404.
    Unknown,
    /// Past its expiry: 410.
    Expired,
    /// A single-use link already used: 410.
    Used,
    /// Withdrawn: 410.
    Revoked,
    /// The recipient's account is deactivated: 410.
    Inactive,
    /// The site's URLs are not usable: 500.
    Misconfigured,
    /// The store failed: 503.
    Unavailable,
}

impl BadLink {
    /// The status code.
    pub fn status(self) -> StatusCode {
        match self {
            BadLink::Malformed | BadLink::Tampered => StatusCode::BAD_REQUEST,
            BadLink::Unknown => StatusCode::NOT_FOUND,
            BadLink::Expired | BadLink::Used | BadLink::Revoked | BadLink::Inactive => StatusCode::GONE,
            BadLink::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
            BadLink::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            BadLink::Malformed => "malformed",
            BadLink::Tampered => "tampered",
            BadLink::Unknown => "unknown",
            BadLink::Expired => "expired",
            BadLink::Used => "used",
            BadLink::Revoked => "revoked",
            BadLink::Inactive => "inactive",
            BadLink::Misconfigured => "misconfigured",
            BadLink::Unavailable => "unavailable",
        }
    }

    fn text(self) -> (&'static str, &'static [&'static str]) {
        match self {
            BadLink::Malformed => (
                "This link is incomplete",
                &[
                    "Part of the link seems to be missing. This often happens when a long link is split across two lines in an email.",
                    "Go back to the email and click the link there, or copy the whole link into your browser's address bar.",
                ],
            ),
            BadLink::Tampered => (
                "This link can't be checked",
                &[
                    "The link doesn't match the one we sent, so we can't open it safely. It may have been changed or copied incompletely.",
                    "Go back to the original email and click the link there. If it still doesn't work, ask the sender for a new one.",
                ],
            ),
            BadLink::Unknown => (
                "We don't recognize this link",
                &[
                    "This link may come from an older email, or the account it was made for no longer exists.",
                    "Please ask the person or team who sent it for a new link.",
                ],
            ),
            BadLink::Expired => (
                "This link has expired",
                &[
                    "Links in our emails work for a limited time, and this one's time is up.",
                    "We can email you a fresh link to the same place. It goes to the address the original email was sent to.",
                ],
            ),
            BadLink::Used => (
                "This link has already been used",
                &[
                    "For your security, this link works only once, and it has already been opened.",
                    "We can email you a fresh link to the same place. It goes to the address the original email was sent to.",
                ],
            ),
            BadLink::Revoked => (
                "This link is no longer active",
                &["The sender has withdrawn this link.", "If you still need access, please contact the person or team who sent it to you."],
            ),
            BadLink::Inactive => (
                "This link is no longer active",
                &[
                    "The account this link was made for is no longer active.",
                    "If you think this is a mistake, please contact the person or team who sent it to you.",
                ],
            ),
            BadLink::Misconfigured => (
                "We can't open this link right now",
                &[
                    "The site this link belongs to isn't fully set up yet, so we don't know where to send you.",
                    "Please try again later, or let the person or team who sent it know.",
                ],
            ),
            BadLink::Unavailable => (
                "We can't open this link right now",
                &["Something went wrong on our side. Your link is fine: please try it again in a minute."],
            ),
        }
    }
}

/// The form field that carries a renewal ticket.
pub const TICKET_FIELD: &str = "ticket";
/// Where the "send me a fresh link" form posts.
pub const RENEW_PATH: &str = "/l/renew";

/// The page for a bad link; with a renewal ticket it offers to email a fresh link.
pub fn bad_link(kind: BadLink, renewal_ticket: Option<&str>) -> Response {
    let (title, lines) = kind.text();
    let fields;
    let action = match renewal_ticket {
        Some(ticket) => {
            fields = [(TICKET_FIELD, ticket)];
            Some(Action::Post { label: "Email me a fresh link", action: RENEW_PATH, fields: &fields })
        }
        None => None,
    };
    let mut resp = web::page_with(kind.status(), title, lines, action);
    if kind == BadLink::Unavailable {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
    secure(resp)
}

/// The answer to a prefetch or a link scanner: 200, nothing used up.
pub fn prefetch() -> Response {
    secure(web::page(StatusCode::OK, "Open this link from your email", &["This link opens when you click it in your email."], None))
}

/// The answers of the renewal form.
pub fn renewal(status: StatusCode, title: &str, lines: &[&str]) -> Response {
    secure(web::page(status, title, lines, None))
}

/// A 405 for methods other than the ones `allow` names.
pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut resp = web::page(
        StatusCode::METHOD_NOT_ALLOWED,
        "This address only opens links",
        &["Please click the link in your email to open it."],
        None,
    );
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    secure(resp)
}

/// A redirect to `location` (already checked).
pub fn redirect(location: &str) -> Response {
    let mut resp = http::Response::new(bytes::Bytes::new());
    *resp.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(value) => {
            resp.headers_mut().insert(header::LOCATION, value);
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            secure(resp)
        }
        // A checked URL is always a valid header value; refuse rather than guess.
        Err(_) => bad_link(BadLink::Tampered, None),
    }
}

/// Headers every answer of this function carries: no referrer (the token is in our URL), no
/// indexing, and a policy that allows only the inline style and same-origin form posts.
pub fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}
