//! HTTP plumbing shared by every HTTP handler: the request and response types (the same on
//! Lambda and in `forcelink dev`), JSON answers, and the friendly HTML page people see.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

/// A request as every HTTP handler sees it, body read whole (bounded by the front end).
pub type Request = http::Request<Bytes>;
/// A response as every HTTP handler answers.
pub type Response = http::Response<Bytes>;

/// A JSON answer.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    with_type(status, "application/json", body.into())
}

/// A JSON error: `{"error": code, "message": message}`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": code, "message": message }))
}

/// The `/healthz` answer of one function.
pub fn healthz(function: &str) -> Response {
    json(StatusCode::OK, &serde_json::json!({ "function": function, "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// The answer of a route whose function is not built yet.
pub fn not_implemented(function: &str, route: &str) -> Response {
    json(
        StatusCode::NOT_IMPLEMENTED,
        &serde_json::json!({ "error": "not_implemented", "function": function, "message": format!("{route} is not implemented yet") }),
    )
}

/// A response with a body and content type.
pub fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A complete, accessible HTML page with a heading and a paragraph per line of `lines`
/// (plain text: escaped here), plus an optional call to action (`label`, `href`).
pub fn page(status: StatusCode, title: &str, lines: &[&str], action: Option<(&str, &str)>) -> Response {
    page_with(status, title, lines, action.map(|(label, href)| Action::Link { label, href }))
}

/// The call to action of a [`page_with`]: a link, or a form that POSTs hidden fields.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    Link { label: &'a str, href: &'a str },
    Post { label: &'a str, action: &'a str, fields: &'a [(&'a str, &'a str)] },
}

/// [`page`] with any [`Action`]; a form's button is a real, focusable `<button>`.
pub fn page_with(status: StatusCode, title: &str, lines: &[&str], action: Option<Action<'_>>) -> Response {
    let mut body = String::with_capacity(2048);
    body.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    body.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    body.push_str(&format!("<title>{} · forcelink</title>", escape(title)));
    body.push_str(PAGE_STYLE);
    body.push_str("</head><body><main>");
    body.push_str(&format!("<h1>{}</h1>", escape(title)));
    for line in lines {
        body.push_str(&format!("<p>{}</p>", escape(line)));
    }
    match action {
        Some(Action::Link { label, href }) => {
            body.push_str(&format!("<p><a class=\"button\" href=\"{}\">{}</a></p>", escape(href), escape(label)));
        }
        Some(Action::Post { label, action, fields }) => {
            body.push_str(&format!("<form method=\"post\" action=\"{}\">", escape(action)));
            for (name, value) in fields {
                body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value)));
            }
            body.push_str(&format!("<p><button class=\"button\" type=\"submit\">{}</button></p></form>", escape(label)));
        }
        None => {}
    }
    body.push_str("</main></body></html>\n");
    html(status, body, &Csp::default())
}

/// A `Content-Security-Policy` for one page: nothing loads but its own inline style (by hash)
/// and, where a page needs it, one inline script (by hash).
#[derive(Debug, Clone)]
pub struct Csp {
    /// Hash of the one inline script (`'sha256-…'`), if the page has one.
    pub script: Option<String>,
    /// Where forms may post: `'self'` unless a page posts elsewhere.
    pub form_action: String,
    /// Who may frame the page: `'none'` unless a page is shown inside Salesforce.
    pub frame_ancestors: String,
}

impl Default for Csp {
    fn default() -> Self {
        Self { script: None, form_action: "'self'".into(), frame_ancestors: "'none'".into() }
    }
}

impl Csp {
    fn header(&self) -> String {
        let mut csp = format!("default-src 'none'; style-src {}; base-uri 'none'", style_hash());
        if let Some(script) = &self.script {
            csp.push_str(&format!("; script-src {script}"));
        }
        csp.push_str(&format!("; form-action {}; frame-ancestors {}", self.form_action, self.frame_ancestors));
        csp
    }
}

/// `'sha256-…'` of an inline script or style's text, for a CSP.
pub fn csp_hash(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes())))
}

fn style_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| csp_hash(PAGE_STYLE.trim_start_matches("<style>").trim_end_matches("</style>")))
}

/// An HTML answer with the headers every page carries: no caching, no sniffing, no referrer,
/// HSTS (browsers ignore it over plain http), and `csp`.
pub fn html(status: StatusCode, body: String, csp: &Csp) -> Response {
    let mut resp = with_type(status, "text/html; charset=utf-8", body.into());
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    if let Ok(v) = HeaderValue::from_str(&csp.header()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// Replaces a page's `frame-ancestors` (pages shown inside Salesforce's tab).
pub fn allow_framing(resp: &mut Response, ancestors: &str) {
    let Some(csp) = resp.headers().get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()) else { return };
    let updated = csp.replace("frame-ancestors 'none'", &format!("frame-ancestors {ancestors}"));
    if let Ok(v) = HeaderValue::from_str(&updated) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

const PAGE_STYLE: &str = "<style>body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f3f5f8;color:#1b1f24;margin:0}\
main{max-width:34rem;margin:10vh auto;background:#fff;border-radius:12px;padding:2rem 2.25rem;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
h1{font-size:1.5rem;margin:0 0 1rem}p{line-height:1.5}\
.button{display:inline-block;background:#0b5cab;color:#fff;padding:.6rem 1.1rem;border-radius:6px;text-decoration:none;\
border:0;font:inherit;font-weight:600;cursor:pointer}.button:hover{background:#084a8a}\
.button:focus{outline:3px solid #f5a623;outline-offset:2px}</style>";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_everything_it_is_given() {
        let resp = page(StatusCode::BAD_REQUEST, "<b>", &["a & \"b\""], Some(("go", "/x?a=1&b=<2>")));
        let body = std::str::from_utf8(resp.body()).unwrap();
        assert!(body.contains("<h1>&lt;b&gt;</h1>"));
        assert!(body.contains("a &amp; &quot;b&quot;"));
        assert!(body.contains("href=\"/x?a=1&amp;b=&lt;2&gt;\""));
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"), "{csp}");
        assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
        assert_eq!(resp.headers()[header::REFERRER_POLICY], "no-referrer");
    }
}
