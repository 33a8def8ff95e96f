//! Salesforce's OAuth 2.0 endpoints through the `oauth2` crate: the authorization URL with
//! PKCE S256, the code exchange, refresh and revoke, over forcelink's one reqwest client
//! ([`OAuthHttp`], an `oauth2::AsyncHttpClient`), plus the token response `signature` check
//! and the identity URL call.

use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, RedirectUrl,
    RequestTokenError, RevocationUrl, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;
use zeroize::Zeroizing;

use super::error::SfError;
use crate::domain::connection::Environment;
use crate::ports::Chain;
use crate::settings::Settings;

/// Salesforce's extra token response fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SalesforceFields {
    /// The org's instance, e.g. `https://acme.my.salesforce.com`; may change between refreshes.
    pub instance_url: String,
    /// The identity URL `…/id/{org18}/{user18}`.
    pub id: String,
    /// Epoch milliseconds, as a string.
    pub issued_at: String,
    /// `base64(HMAC-SHA256(client_secret, id + issued_at))`.
    pub signature: String,
    /// With the `openid` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for SalesforceFields {}

/// A Salesforce token response.
pub type SfTokenResponse = StandardTokenResponse<SalesforceFields, BasicTokenType>;

/// The `oauth2` client for one login host, with authorize, token and revoke endpoints set.
pub type SfOAuthClient = oauth2::Client<
    BasicErrorResponse,
    SfTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
>;

/// The client app a flow authorizes as: forcelink's own, or a customer's for one connection.
#[derive(Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// The login host of an environment: the settings' production or sandbox URL, or the My Domain.
/// Settings URLs may carry a path (the simulator serves `https://127.0.0.1:P/test.salesforce.com`).
pub fn login_base(settings: &Settings, env: &Environment) -> String {
    let base = match env {
        Environment::Production => settings.salesforce.login_url.as_str(),
        Environment::Sandbox => settings.salesforce.sandbox_url.as_str(),
        Environment::MyDomain(url) => url.as_str(),
    };
    base.trim_end_matches('/').to_string()
}

/// The redirect URI registered in the client app: `{public}/oauth/callback`.
pub fn redirect_uri(settings: &Settings) -> String {
    format!("{}/oauth/callback", settings.public_url.as_str().trim_end_matches('/'))
}

/// Builds the `oauth2` client for a login host.
pub fn client(settings: &Settings, login_base: &str, app: &AppCredentials) -> Result<SfOAuthClient, SfError> {
    let bad = |what: &'static str| move |source| SfError::OAuthUrl { what, base: login_base.to_string(), source };
    Ok(oauth2::Client::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(app.client_secret.to_string()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(format!("{login_base}/services/oauth2/authorize")).map_err(bad("authorize"))?)
        .set_token_uri(TokenUrl::new(format!("{login_base}/services/oauth2/token")).map_err(bad("token"))?)
        .set_revocation_url(RevocationUrl::new(format!("{login_base}/services/oauth2/revoke")).map_err(bad("revoke"))?)
        .set_redirect_uri(RedirectUrl::new(redirect_uri(settings)).map_err(bad("redirect"))?))
}

/// `oauth2`'s HTTP client over forcelink's reqwest client (rustls, the extra CA, timeouts).
#[derive(Clone)]
pub struct OAuthHttp(pub reqwest::Client);

/// A transport failure under the `oauth2` crate.
#[derive(Debug, thiserror::Error)]
pub enum OAuthHttpError {
    /// The request could not be sent or its answer not read (reqwest's text names the URL,
    /// never the form with the secrets).
    #[error("{}", Chain(.0))]
    Transport(#[from] reqwest::Error),
    /// The answer could not be rebuilt as an `http` response.
    #[error("answer: {0}")]
    Answer(#[from] http::Error),
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OAuthHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = self.0.execute(request).await?;
            let mut out = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                out = out.header(name, value);
            }
            let body = response.bytes().await?;
            Ok(out.body(body.to_vec())?)
        })
    }
}

/// Why a token call failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant` "expired authorization code" on a refresh: another refresh of the same
    /// token is under way. Re-read the store and retry.
    #[error("concurrent refresh")]
    ConcurrentRefresh,
    /// Any other `invalid_grant`: a new authorization is needed.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// Another OAuth error answer (`invalid_client`, `redirect_uri_mismatch`…).
    #[error("{code}: {description}")]
    Refused { code: String, description: String },
    /// No answer in time, or a 5xx page: retry later.
    #[error("token endpoint unreachable: {0}")]
    Unavailable(String),
    /// The call failed in transport: retry later.
    #[error("token endpoint unreachable: {0}")]
    Transport(#[source] OAuthHttpError),
    /// The answer did not parse or its signature did not verify.
    #[error("token response refused: {0}")]
    BadResponse(String),
}

impl From<TokenError> for SfError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::InvalidGrant(d) => SfError::NeedsReauth(d),
            TokenError::Unavailable(d) => SfError::Transient(d),
            TokenError::ConcurrentRefresh => SfError::Transient("concurrent refresh".into()),
            other => SfError::Token(other),
        }
    }
}

/// Maps the `oauth2` crate's error.
pub fn token_error(e: RequestTokenError<OAuthHttpError, BasicErrorResponse>) -> TokenError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let description = r.error_description().cloned().unwrap_or_default();
            match r.error() {
                BasicErrorResponseType::InvalidGrant if description == "expired authorization code" => TokenError::ConcurrentRefresh,
                BasicErrorResponseType::InvalidGrant => TokenError::InvalidGrant(description),
                other => TokenError::Refused { code: other.as_ref().to_string(), description },
            }
        }
        RequestTokenError::Request(e) => TokenError::Transport(e),
        RequestTokenError::Parse(e, body) => {
            // A 5xx page is not JSON: treat a non-JSON answer as unavailable, a JSON one as bad.
            if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
                TokenError::BadResponse(e.to_string())
            } else {
                TokenError::Unavailable(format!("unreadable answer: {}", super::error::snippet(&body)))
            }
        }
        RequestTokenError::Other(e) => TokenError::BadResponse(e),
    }
}

/// Checks `signature = base64(HMAC-SHA256(client_secret, id + issued_at))` in constant time.
pub fn verify_signature(client_secret: &str, fields: &SalesforceFields) -> bool {
    let Ok(tag) = STANDARD.decode(fields.signature.as_bytes()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()) else { return false };
    mac.update(fields.id.as_bytes());
    mac.update(fields.issued_at.as_bytes());
    mac.verify_slice(&tag).is_ok()
}

/// The org and user ids in an identity URL `…/id/{org}/{user}` (18-char forms).
pub fn ids_from_identity_url(id_url: &str) -> Option<(String, String)> {
    let url = Url::parse(id_url).ok()?;
    let mut segs: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let user = segs.pop()?;
    let org = segs.pop()?;
    (segs.last() == Some(&"id")).then_some(())?;
    Some((crate::domain::ids::to_18(org)?, crate::domain::ids::to_18(user)?))
}

/// The identity service's answer (the fields forcelink uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub organization_id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// `GET {id_url}` with the access token.
pub async fn identity(http: &reqwest::Client, id_url: &str, access_token: &str) -> Result<Identity, SfError> {
    let resp = http
        .get(id_url)
        .bearer_auth(access_token)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(SfError::Unreachable)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(SfError::Unreachable)?;
    if status != 200 {
        return Err(match status {
            401 | 403 => SfError::InvalidSession(format!("identity call answered HTTP {status}: {}", super::error::snippet(&body))),
            _ => SfError::from_response(status, &body),
        });
    }
    serde_json::from_slice(&body).map_err(|e| SfError::unreadable("the identity answer", e))
}

/// Revokes a token (refresh tokens revoke their whole family). Best effort: an already
/// revoked or unknown token is not an error.
pub async fn revoke(http: &reqwest::Client, login_base: &str, token: &str) -> Result<(), SfError> {
    let resp =
        http.post(format!("{login_base}/services/oauth2/revoke")).form(&[("token", token)]).send().await.map_err(SfError::Unreachable)?;
    match resp.status().as_u16() {
        200 | 400 => Ok(()),
        s if s >= 500 => Err(SfError::Transient(format!("revoke answered HTTP {s}"))),
        s => Err(SfError::Other { status: s, code: "revoke".into(), message: "revoke refused".into() }),
    }
}

#[cfg(test)]
mod tests {
    use oauth2::AsyncHttpClient;

    use super::*;

    /// A refused connection maps to a transient token error that keeps reqwest's error.
    #[tokio::test]
    async fn a_transport_failure_keeps_its_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let request = http::Request::post(format!("http://127.0.0.1:{port}/services/oauth2/token")).body(Vec::new()).unwrap();
        let e = OAuthHttp(reqwest::Client::new()).call(request).await.unwrap_err();
        assert!(matches!(e, OAuthHttpError::Transport(_)), "{e:?}");
        let e = SfError::from(token_error(RequestTokenError::Request(e)));
        assert!(e.is_transient(), "{e:?}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause.filter(|c| c.downcast_ref::<reqwest::Error>().is_none()) {
            cause = c.source();
        }
        assert!(cause.and_then(|c| c.downcast_ref::<reqwest::Error>()).is_some_and(reqwest::Error::is_connect), "{e:?}");
    }

    #[test]
    fn signature_is_checked() {
        let id = "https://login.salesforce.com/id/00D5g000000AbCdEAK/0055g000000XyZaAAB".to_string();
        let issued_at = "1767225600000".to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(format!("{id}{issued_at}").as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let fields = SalesforceFields { instance_url: "https://x".into(), id, issued_at, signature, id_token: None };
        assert!(verify_signature("secret", &fields));
        assert!(!verify_signature("other", &fields));
        assert!(!verify_signature("secret", &SalesforceFields { issued_at: "1".into(), ..fields.clone() }));
        assert!(!verify_signature("secret", &SalesforceFields { signature: "%%%".into(), ..fields }));
    }

    #[test]
    fn identity_url_ids() {
        let (org, user) = ids_from_identity_url("https://127.0.0.1:9/test.salesforce.com/id/00D5g000000AbCd/0055g000000XyZa").unwrap();
        assert_eq!(org.len(), 18);
        assert_eq!(&user[..15], "0055g000000XyZa");
        assert!(ids_from_identity_url("https://x/id/short/0055g000000XyZa").is_none());
        assert!(ids_from_identity_url("not a url").is_none());
    }
}
