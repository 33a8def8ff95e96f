//! Listeners and routing: HTTPS (and plain HTTP) on loopback, Salesforce host names as a
//! leading path segment (`/test.salesforce.com/services/…`) or a `Host` header, trailing-slash
//! normalization, and connection drops for the timeout fault.

use crate::sim::Core;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Marks a response whose connection must be dropped instead of answered.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// A parsed request as handlers see it.
#[derive(Debug)]
pub struct Req {
    /// Method.
    pub method: Method,
    /// Path without the virtual-host segment and trailing slash.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Salesforce host the request was meant for (`login.salesforce.com`, `acme.my.salesforce.com`, …).
    pub vhost: Option<String>,
    /// Request came over TLS.
    pub tls: bool,
}

impl Req {
    /// Query parameters.
    pub fn params(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(&self.query).unwrap_or_default()
    }
    /// One query parameter.
    pub fn param(&self, k: &str) -> Option<String> {
        self.params().into_iter().find(|(a, _)| a == k).map(|(_, v)| v)
    }
    /// Form body parameters.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }
    /// Bearer (or `OAuth`) token from the Authorization header.
    pub fn bearer(&self) -> Option<String> {
        let h = self.headers.get("authorization")?.to_str().ok()?;
        let (scheme, tok) = h.split_once(' ')?;
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")).then(|| tok.trim().to_string())
    }
}

fn is_sf_host(h: &str) -> bool {
    let h = h.to_ascii_lowercase();
    h.ends_with(".salesforce.com") || h.ends_with(".force.com")
}

/// Splits `/login.salesforce.com/services/…` into the virtual host and the rest.
pub fn split_vhost(path: &str, host_header: Option<&str>) -> (Option<String>, String) {
    let trimmed = path.trim_start_matches('/');
    let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let (vhost, mut p) = if is_sf_host(first) {
        (Some(first.to_ascii_lowercase()), format!("/{rest}"))
    } else {
        let h = host_header.map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
        (h.filter(|h| is_sf_host(h)), path.to_string())
    };
    while p.len() > 1 && p.ends_with('/') {
        p.pop();
    }
    (vhost, p)
}

async fn dispatch(core: Arc<Core>, req: Request<hyper::body::Incoming>, tls: bool) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match http_body_util::BodyExt::collect(body).await {
        Ok(b) => b.to_bytes(),
        Err(_) => return simple(StatusCode::BAD_REQUEST, "bad body"),
    };
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok());
    let (vhost, path) = split_vhost(parts.uri.path(), host);
    let r =
        Req { method: parts.method, path, query: parts.uri.query().unwrap_or("").to_string(), headers: parts.headers, body, vhost, tls };
    tracing::debug!(method = %r.method, path = %r.path, vhost = ?r.vhost, "request");
    let p = r.path.clone();
    if p.starts_with("/services/oauth2/") || p.starts_with("/id/") {
        crate::oauth::handle(&core, r).await
    } else if p.starts_with("/services/Soap/u/") {
        crate::soap::login(&core, r)
    } else if p == "/services/data" || p.starts_with("/services/data/") {
        crate::rest::handle(&core, r).await
    } else if p.starts_with("/_sim") {
        crate::admin::handle(&core, r).await
    } else if p == "/" {
        simple(StatusCode::OK, "sfsim: a Salesforce org simulator. See /_sim/info")
    } else {
        crate::error::ApiError::not_found().into_response_body()
    }
}

/// A plain-text response.
pub fn simple(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from(text.to_string()))
        .unwrap_or_default()
}

async fn serve_conn<S>(core: Arc<Core>, io: S, tls: bool, mut shutdown: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let core = core.clone();
        async move {
            let resp = dispatch(core, req, tls).await;
            if resp.extensions().get::<DropConnection>().is_some() {
                Err(std::io::Error::other("connection dropped by fault"))
            } else {
                Ok(resp)
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        _ = conn => {},
        _ = shutdown.changed() => {},
    }
}

/// Runs an accept loop until shutdown.
pub(crate) async fn accept_loop(
    core: Arc<Core>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let core = core.clone();
        let sd = shutdown.clone();
        match &tls {
            Some(acc) => {
                let acc = acc.clone();
                tokio::spawn(async move {
                    if let Ok(s) = acc.accept(stream).await {
                        serve_conn(core, s, true, sd).await;
                    }
                });
            }
            None => {
                tokio::spawn(serve_conn(core, stream, false, sd));
            }
        }
    }
}
