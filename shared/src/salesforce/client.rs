//! [`SalesforceClient`]: the REST API of one connection, for every function.
//!
//! It takes the access token from the in-memory cache (opening it from the store once), sends
//! the request, and on `401 INVALID_SESSION_ID` refreshes (single-flight) and retries once.
//! Each answer's `Sforce-Limit-Info` updates the connection's API usage (in memory at once,
//! in the store at most once a minute). Errors come back as [`SfError`].
//!
//! ```no_run
//! # async fn demo(deps: &forcelink::Deps) -> Result<(), forcelink::salesforce::SfError> {
//! use futures::TryStreamExt;
//! let sf = forcelink::salesforce::SalesforceClient::for_site(deps, "acme", None).await?;
//! let mut pages = std::pin::pin!(sf.query("SELECT Id, Email FROM User"));
//! while let Some(page) = pages.try_next().await? {
//!     println!("{} of {} users", page.records.len(), page.total_size);
//! }
//! let limits: serde_json::Value = sf.get_json("limits").await?;
//! # let _ = limits; Ok(()) }
//! ```

use std::sync::Arc;

use futures::Stream;
use http::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::SfError;
use super::oauth::{self, Identity};
use super::session::{self, Cached, Session};
use crate::deps::Deps;
use crate::domain::connection::CredentialProblem;
use crate::domain::site::Site;

/// The REST API of one connection. Cheap to clone; share it freely.
#[derive(Clone)]
pub struct SalesforceClient {
    deps: Deps,
    site: Arc<str>,
    connection: Arc<str>,
    session: Arc<Session>,
}

/// An answer read whole.
#[derive(Debug, Clone)]
pub struct SfResponse {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

/// One page of a SOQL query.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct QueryPage {
    #[serde(rename = "totalSize", default)]
    pub total_size: u64,
    #[serde(default)]
    pub done: bool,
    #[serde(rename = "nextRecordsUrl", default)]
    pub next_records_url: Option<String>,
    #[serde(default)]
    pub records: Vec<serde_json::Value>,
}

impl QueryPage {
    /// The next page's URL; `None` when this page is the last (`done`). A page that is neither
    /// done nor points further means the read is partial: [`SfError::IncompleteQuery`], never
    /// a complete read.
    pub fn next_page(&self) -> Result<Option<String>, SfError> {
        match (&self.next_records_url, self.done) {
            (_, true) => Ok(None),
            (Some(next), false) => Ok(Some(next.clone())),
            (None, false) => {
                Err(SfError::IncompleteQuery(format!("{} of {} records on the last page", self.records.len(), self.total_size)))
            }
        }
    }
}

impl SalesforceClient {
    /// The client of a named connection.
    pub fn new(deps: &Deps, site: &str, connection: &str) -> Self {
        Self { deps: deps.clone(), site: site.into(), connection: connection.into(), session: deps.salesforce.session(site, connection) }
    }

    /// The client of `connection`, or of the site's default connection when `None`.
    pub async fn for_site(deps: &Deps, site: &str, connection: Option<&str>) -> Result<Self, SfError> {
        match connection {
            Some(name) => Ok(Self::new(deps, site, name)),
            None => {
                let site_rec =
                    Site::load(deps.store.as_ref(), site).await?.ok_or_else(|| SfError::NotConnected(format!("no site {site:?}")))?.record;
                let name =
                    site_rec.default_connection.ok_or_else(|| SfError::NotConnected(format!("site {site:?} has no default connection")))?;
                Ok(Self::new(deps, site, &name))
            }
        }
    }

    /// The site id.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The connection name.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// The access token and instance URL (cached; opened from the store on first use).
    pub async fn access(&self) -> Result<Cached, SfError> {
        if let Some(c) = self.session.cached() {
            return Ok(c);
        }
        self.deps.salesforce.access(&self.deps, &self.site, &self.connection).await
    }

    /// `(used, max)` daily API requests, from the latest `Sforce-Limit-Info` seen here.
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        self.session.api_usage()
    }

    /// The REST base, e.g. `https://acme.my.salesforce.com/services/data/v64.0/`.
    fn resolve(&self, instance: &str, path: &str) -> Result<String, SfError> {
        let instance = instance.trim_end_matches('/');
        if path.starts_with("https://") || path.starts_with("http://") {
            // Only the connection's own instance ever sees the token.
            return if path.starts_with(&format!("{instance}/")) {
                Ok(path.to_string())
            } else {
                Err(SfError::Invalid("refusing to send the token to a URL outside the instance".into()))
            };
        }
        if path.starts_with('/') {
            return Ok(format!("{instance}{path}"));
        }
        Ok(format!("{instance}/services/data/v{}/{path}", self.deps.settings.salesforce.api_version))
    }

    /// Sends a request and returns the answer whatever its status, after the
    /// refresh-and-retry-once on `401`. `path` is relative to `/services/data/vXX.X/`
    /// (`sobjects/Contact`), absolute on the instance (`/services/…`), or a full instance URL.
    pub async fn send(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<SfResponse, SfError> {
        let mut token = self.access().await?;
        for attempt in 0..2 {
            let url = self.resolve(&token.instance_url, path)?;
            let mut req = self.deps.http.request(method.clone(), &url).bearer_auth(token.access_token.as_str());
            req = req.header(http::header::ACCEPT, "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(SfError::Unreachable)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(SfError::Unreachable)?;
            self.note_limits(&headers).await;
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::debug!(site = %self.site, connection = %self.connection, "session refused (401); refreshing");
                token = self.deps.salesforce.refresh(&self.deps, &self.site, &self.connection, Some(token.access_token.as_str())).await?;
                continue;
            }
            return Ok(SfResponse { status, headers, body: bytes });
        }
        Err(SfError::InvalidSession("refused again after a refresh".into()))
    }

    /// As [`Self::send`] with a raw body and its content type (Bulk API 2.0 CSV uploads) and
    /// an `Accept` header of the caller's choice (`text/csv` for Bulk results).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        accept: &str,
        body: bytes::Bytes,
    ) -> Result<SfResponse, SfError> {
        let mut token = self.access().await?;
        for attempt in 0..2 {
            let url = self.resolve(&token.instance_url, path)?;
            let mut req = self.deps.http.request(method.clone(), &url).bearer_auth(token.access_token.as_str());
            req = req.header(http::header::ACCEPT, accept);
            if let Some(ct) = content_type {
                req = req.header(http::header::CONTENT_TYPE, ct).body(body.clone());
            }
            let resp = req.send().await.map_err(SfError::Unreachable)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(SfError::Unreachable)?;
            self.note_limits(&headers).await;
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                token = self.deps.salesforce.refresh(&self.deps, &self.site, &self.connection, Some(token.access_token.as_str())).await?;
                continue;
            }
            return Ok(SfResponse { status, headers, body: bytes });
        }
        Err(SfError::InvalidSession("refused again after a refresh".into()))
    }

    /// Sends a request and maps any non-2xx answer to an [`SfError`].
    pub async fn send_ok(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<SfResponse, SfError> {
        let resp = self.send(method, path, body).await?;
        if resp.status.is_success() {
            return Ok(resp);
        }
        let error = SfError::from_response(resp.status.as_u16(), &resp.body);
        if matches!(error, SfError::ApiDisabled(_))
            && let Err(e) = super::health::note(&self.deps, &self.site, &self.connection, CredentialProblem::ApiDisabled).await
        {
            tracing::warn!(site = %self.site, connection = %self.connection, error = %e, "API disabled, but not recorded");
        }
        Err(error)
    }

    /// `GET` a JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, SfError> {
        let resp = self.send_ok(Method::GET, path, None).await?;
        parse(&resp.body)
    }

    /// Sends a JSON body (`POST`, `PATCH`, `PUT`, `DELETE`) and parses the JSON answer
    /// (`null` for an empty `204`).
    pub async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(&self, method: Method, path: &str, body: &B) -> Result<T, SfError> {
        let value = serde_json::to_value(body).map_err(|source| SfError::Encode { what: "the request body", source })?;
        let resp = self.send_ok(method, path, Some(&value)).await?;
        if resp.body.is_empty() { parse(b"null") } else { parse(&resp.body) }
    }

    /// Runs a SOQL query and streams its pages, following `nextRecordsUrl` until `done`; a
    /// page with neither ends the stream with [`SfError::IncompleteQuery`].
    pub fn query(&self, soql: &str) -> impl Stream<Item = Result<QueryPage, SfError>> + Send + 'static {
        self.pages(format!("query?q={}", urlencode(soql)))
    }

    /// As [`Self::query`] with `queryAll` (deleted and archived rows too).
    pub fn query_all(&self, soql: &str) -> impl Stream<Item = Result<QueryPage, SfError>> + Send + 'static {
        self.pages(format!("queryAll?q={}", urlencode(soql)))
    }

    fn pages(&self, first: String) -> impl Stream<Item = Result<QueryPage, SfError>> + Send + 'static {
        let client = self.clone();
        futures::stream::unfold(Some(first), move |next| {
            let client = client.clone();
            async move {
                let path = next?;
                match client.get_json::<QueryPage>(&path).await {
                    Ok(page) => match page.next_page() {
                        Ok(following) => Some((Ok(page), following)),
                        Err(e) => Some((Err(e), None)),
                    },
                    Err(e) => Some((Err(e), None)),
                }
            }
        })
    }

    /// Every record of a query (for small result sets; stream [`Self::query`] otherwise).
    pub async fn query_records(&self, soql: &str) -> Result<Vec<serde_json::Value>, SfError> {
        use futures::TryStreamExt;
        let pages: Vec<QueryPage> = self.query(soql).try_collect().await?;
        Ok(pages.into_iter().flat_map(|p| p.records).collect())
    }

    /// The identity of the connected user (`GET` the identity URL with the refresh dance).
    pub async fn identity(&self) -> Result<Identity, SfError> {
        let conn = session::load(&self.deps, &self.site, &self.connection).await?.record;
        let (org, user) = match (&conn.org_id, &conn.user) {
            (Some(o), Some(u)) => (o.clone(), u.id.clone()),
            _ => return Err(SfError::NotConnected(format!("connection {}/{} is not connected", self.site, self.connection))),
        };
        let base = oauth::login_base(&self.deps.settings, &conn.environment);
        let url = format!("{base}/id/{org}/{user}");
        let token = self.access().await?;
        match oauth::identity(&self.deps.http, &url, &token.access_token).await {
            Err(SfError::InvalidSession(_)) => {
                let token =
                    self.deps.salesforce.refresh(&self.deps, &self.site, &self.connection, Some(token.access_token.as_str())).await?;
                oauth::identity(&self.deps.http, &url, &token.access_token).await
            }
            other => other,
        }
    }

    /// Records `Sforce-Limit-Info: api-usage=USED/MAX`.
    async fn note_limits(&self, headers: &http::HeaderMap) {
        let Some((used, max)) = headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()).and_then(parse_limit_info) else {
            return;
        };
        if self.session.note_usage(used, max, self.deps.clock.epoch_secs()) {
            let r = session::update_connection(&self.deps, &self.site, &self.connection, |c| c.api_usage = Some((used, max))).await;
            if let Err(e) = r {
                tracing::debug!(site = %self.site, connection = %self.connection, error = %e, "API usage not saved");
            }
        }
    }
}

/// Parses `api-usage=18/100000` out of a `Sforce-Limit-Info` header.
pub fn parse_limit_info(value: &str) -> Option<(u64, u64)> {
    value.split(',').map(str::trim).find_map(|part| {
        let (used, max) = part.strip_prefix("api-usage=")?.split_once('/')?;
        Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
    })
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, SfError> {
    serde_json::from_slice(body).map_err(|e| SfError::unreadable("Salesforce's answer", e))
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info() {
        assert_eq!(parse_limit_info("api-usage=18/100000"), Some((18, 100_000)));
        assert_eq!(parse_limit_info("per-app-api-usage=1/5(appName=x), api-usage=7/15000"), Some((7, 15_000)));
        assert_eq!(parse_limit_info("nonsense"), None);
    }

    #[test]
    fn an_unreadable_answer_keeps_its_parse_error() {
        let e = parse::<Vec<String>>(b"<html>down</html>").unwrap_err();
        assert!(matches!(e, SfError::Unreadable { .. }) && e.is_internal() && !e.is_transient(), "{e:?}");
        assert!(e.to_string().starts_with("Salesforce's answer does not parse: "), "{e}");
        let cause = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<serde_json::Error>());
        assert!(cause.is_some_and(serde_json::Error::is_syntax), "{e:?}");
    }
}
