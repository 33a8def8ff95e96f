//! Access tokens: sealed at rest, cached in memory, refreshed single-flight.
//!
//! Salesforce access tokens carry no lifetime, so a token is used until Salesforce answers
//! `401 INVALID_SESSION_ID`; then exactly one caller refreshes:
//!
//! 1. in this process, callers of one connection queue on an async mutex, and whoever gets it
//!    after a refresh finds the new token in the cache;
//! 2. across Lambdas, the refresher holds a lease item in the store (conditional put with a
//!    30 s TTL); others re-read the connection until its sealed access token changes.
//!
//! The lease holder always re-reads the refresh token from the store, stores a rotated one
//! (and a changed `instance_url`) **before** releasing the lease, so a rotated-out token is
//! never sent. Salesforce's concurrent-refresh answer (`invalid_grant` "expired authorization
//! code") means someone else refreshed: re-read the store and retry. Any other `invalid_grant`
//! marks the connection `needs_reauth`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use oauth2::{RefreshToken, TokenResponse};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::SfError;
use super::oauth::{self, AppCredentials, OAuthHttp, TokenError};
use crate::deps::Deps;
use crate::domain::connection::{Change, Connection, ConnectionStatus};
use crate::domain::keys;
use crate::domain::record::{self, RecordError};
use crate::ports::keyring::{KeyRing, Sealed};
use crate::ports::store::{Cond, Item, StoreError};

/// How long a refresh lease lives if its holder dies.
pub const LEASE_SECS: i64 = 30;
/// How long a caller waits for someone else's refresh before giving up (transient).
const REFRESH_WAIT: Duration = Duration::from_secs(25);

/// The tokens of a connection, as sealed into `Connection.tokens_sealed`.
#[derive(Serialize, Deserialize)]
pub struct TokenBundle {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl Drop for TokenBundle {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.access_token.zeroize();
        if let Some(r) = &mut self.refresh_token {
            r.zeroize();
        }
    }
}

impl std::fmt::Debug for TokenBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenBundle(<redacted>)")
    }
}

/// The associated data a connection's tokens are sealed with.
pub fn tokens_aad(site: &str, connection: &str) -> String {
    format!("tokens:{site}/{connection}")
}

/// Seals a token bundle for `site`/`connection`.
pub async fn seal_tokens(keys: &dyn KeyRing, site: &str, connection: &str, bundle: &TokenBundle) -> Result<String, SfError> {
    let plain = Zeroizing::new(serde_json::to_vec(bundle).map_err(|e| SfError::Internal(e.to_string()))?);
    let sealed = keys.seal(&plain, tokens_aad(site, connection).as_bytes()).await.map_err(|e| SfError::Internal(format!("seal: {e}")))?;
    Ok(sealed.encode())
}

/// Opens a connection's sealed tokens.
pub async fn open_tokens(keys: &dyn KeyRing, conn: &Connection) -> Result<TokenBundle, SfError> {
    let text = conn.tokens_sealed.as_deref().ok_or_else(|| not_connected(conn))?;
    let sealed = Sealed::decode(text).map_err(|e| SfError::Internal(format!("tokens of {}/{}: {e}", conn.site, conn.name)))?;
    let plain = keys
        .open(&sealed, tokens_aad(&conn.site, &conn.name).as_bytes())
        .await
        .map_err(|e| SfError::Internal(format!("tokens of {}/{}: {e}", conn.site, conn.name)))?;
    serde_json::from_slice(&plain).map_err(|_| SfError::Internal(format!("tokens of {}/{} do not parse", conn.site, conn.name)))
}

fn not_connected(conn: &Connection) -> SfError {
    match conn.status {
        ConnectionStatus::NeedsReauth => SfError::NeedsReauth(format!("connection {}/{} needs a new authorization", conn.site, conn.name)),
        _ => SfError::NotConnected(format!("connection {}/{} is not connected", conn.site, conn.name)),
    }
}

/// The client app a connection authorizes as: its own (sealed in `Connection.client`) or forcelink's.
pub async fn app_credentials(deps: &Deps, conn: &Connection) -> Result<AppCredentials, SfError> {
    if let Some(client) = &conn.client {
        let sealed = Sealed::decode(&client.client_secret_sealed).map_err(|e| SfError::Internal(format!("client secret: {e}")))?;
        let aad = crate::config::client_secret_aad(&conn.site, &conn.name);
        let plain = deps.keys.open(&sealed, aad.as_bytes()).await.map_err(|e| SfError::Internal(format!("client secret: {e}")))?;
        let secret = String::from_utf8(plain.to_vec()).map_err(|_| SfError::Internal("client secret is not UTF-8".into()))?;
        return Ok(AppCredentials { client_id: client.client_id.clone(), client_secret: Zeroizing::new(secret) });
    }
    forcelink_app(deps)
}

/// forcelink's own client app, from settings.
pub fn forcelink_app(deps: &Deps) -> Result<AppCredentials, SfError> {
    let sf = &deps.settings.salesforce;
    match (&sf.client_id, &sf.client_secret) {
        (Some(id), Some(secret)) => Ok(AppCredentials { client_id: id.clone(), client_secret: Zeroizing::new(secret.clone()) }),
        _ => Err(SfError::Internal(
            "forcelink's Salesforce app is not configured: set FORCELINK_SF_CLIENT_ID and FORCELINK_SF_CLIENT_SECRET (or _REF)".into(),
        )),
    }
}

/// An access token ready to use, with the instance it is for.
#[derive(Clone)]
pub struct Cached {
    pub access_token: Arc<Zeroizing<String>>,
    pub instance_url: Arc<str>,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").field("instance_url", &self.instance_url).finish_non_exhaustive()
    }
}

/// One connection's in-memory state.
#[derive(Default)]
pub struct Session {
    token: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    used: AtomicU64,
    max: AtomicU64,
    usage_saved_at: AtomicI64,
}

impl Session {
    /// The cached token, if any.
    pub fn cached(&self) -> Option<Cached> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, c: Option<Cached>) {
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = c;
    }

    /// The latest `Sforce-Limit-Info` usage seen in this process: `(used, max)`.
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        let max = self.max.load(Ordering::Relaxed);
        (max > 0).then(|| (self.used.load(Ordering::Relaxed), max))
    }

    /// Records usage; returns true when it is time to persist it (at most once a minute).
    pub(crate) fn note_usage(&self, used: u64, max: u64, now: i64) -> bool {
        self.used.store(used, Ordering::Relaxed);
        self.max.store(max, Ordering::Relaxed);
        let last = self.usage_saved_at.load(Ordering::Relaxed);
        now - last >= 60 && self.usage_saved_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// Sessions by site, then connection name (two lookups by `&str`, no allocation).
type BySite = HashMap<String, HashMap<String, Arc<Session>>>;

/// Every connection's session in this process (`Deps.salesforce`).
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<RwLock<BySite>>,
}

impl Sessions {
    /// The session of `site`/`connection` (created empty on first use).
    pub fn session(&self, site: &str, connection: &str) -> Arc<Session> {
        if let Some(s) = self.inner.read().unwrap_or_else(|e| e.into_inner()).get(site).and_then(|m| m.get(connection)) {
            return s.clone();
        }
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.entry(site.to_string()).or_default().entry(connection.to_string()).or_default().clone()
    }

    /// The cached access token of a connection, without touching the store (the fast path).
    pub fn cached(&self, site: &str, connection: &str) -> Option<Cached> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).get(site)?.get(connection)?.cached()
    }

    /// Forgets a connection's cached token (after a new authorization, a rename or a removal).
    pub fn forget(&self, site: &str, connection: &str) {
        if let Some(s) = self.inner.read().unwrap_or_else(|e| e.into_inner()).get(site).and_then(|m| m.get(connection)) {
            s.set(None);
        }
    }

    /// The access token: from memory, else opened from the store.
    pub async fn access(&self, deps: &Deps, site: &str, connection: &str) -> Result<Cached, SfError> {
        let session = self.session(site, connection);
        if let Some(c) = session.cached() {
            return Ok(c);
        }
        let conn = load(deps, site, connection).await?.record;
        if conn.status != ConnectionStatus::Connected {
            return Err(not_connected(&conn));
        }
        let bundle = open_tokens(deps.keys.as_ref(), &conn).await?;
        let cached = to_cached(&bundle, &conn);
        session.set(Some(cached.clone()));
        Ok(cached)
    }

    /// Refreshes after `stale` was refused (or unconditionally with `None`), single-flight in
    /// this process and, through the store lease, across processes.
    pub async fn refresh(&self, deps: &Deps, site: &str, connection: &str, stale: Option<&str>) -> Result<Cached, SfError> {
        let session = self.session(site, connection);
        let _turn = session.refresh.lock().await;
        if let (Some(stale), Some(c)) = (stale, session.cached())
            && c.access_token.as_str() != stale
        {
            return Ok(c);
        }
        match refresh_shared(deps, site, connection, stale).await {
            Ok(c) => {
                session.set(Some(c.clone()));
                Ok(c)
            }
            Err(e) => {
                session.set(None);
                Err(e)
            }
        }
    }
}

fn to_cached(bundle: &TokenBundle, conn: &Connection) -> Cached {
    Cached {
        access_token: Arc::new(Zeroizing::new(bundle.access_token.clone())),
        instance_url: Arc::from(conn.instance_url.as_deref().unwrap_or_default()),
    }
}

/// Loads a connection (NotConnected when there is none).
pub async fn load(deps: &Deps, site: &str, connection: &str) -> Result<record::Versioned<Connection>, SfError> {
    let sk = format!("{}{connection}", keys::CONNECTION_PREFIX);
    record::load::<Connection>(deps.store.as_ref(), &keys::site_pk(site), &sk)
        .await
        .map_err(store_err)?
        .ok_or_else(|| SfError::NotConnected(format!("site {site:?} has no connection {connection:?}")))
}

pub(crate) fn store_err(e: RecordError) -> SfError {
    SfError::Internal(format!("store: {e}"))
}

/// Loads, changes and saves a connection under its version, retrying on a concurrent write.
pub async fn update_connection(
    deps: &Deps,
    site: &str,
    connection: &str,
    mut change: impl FnMut(&mut Connection),
) -> Result<Connection, SfError> {
    for _ in 0..8 {
        let record::Versioned { mut record, version } = load(deps, site, connection).await?;
        change(&mut record);
        match record::save(deps.store.as_ref(), &record, Cond::Version(version)).await {
            Ok(_) => return Ok(record),
            Err(RecordError::Store(StoreError::ConditionFailed { .. })) => continue,
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(SfError::Transient(format!("connection {site}/{connection} kept changing under us")))
}

enum Step {
    Done(Cached),
    Retry,
}

async fn refresh_shared(deps: &Deps, site: &str, connection: &str, stale: Option<&str>) -> Result<Cached, SfError> {
    let deadline = Instant::now() + REFRESH_WAIT;
    let pk = keys::refresh_lease_pk(site, connection);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let conn = load(deps, site, connection).await?.record;
        if conn.status != ConnectionStatus::Connected {
            return Err(not_connected(&conn));
        }
        if let Some(stale) = stale {
            let bundle = open_tokens(deps.keys.as_ref(), &conn).await?;
            if bundle.access_token != stale {
                return Ok(to_cached(&bundle, &conn));
            }
        }
        let now = deps.clock.epoch_secs();
        let lease =
            Item::new(&pk, keys::REFRESH_LEASE_SK, format!("{{\"owner\":\"{}\"}}", uuid::Uuid::new_v4())).with_expiry(now + LEASE_SECS);
        let lease_version = match deps.store.put(lease, Cond::NotExists).await {
            Ok(v) => Some(v),
            Err(StoreError::ConditionFailed { .. }) => None,
            Err(e) => return Err(SfError::Internal(format!("store: {e}"))),
        };
        let step = match lease_version {
            None => Step::Retry,
            Some(v) => {
                let result = refresh_under_lease(deps, site, connection, stale).await;
                if let Err(e) = deps.store.delete(&pk, keys::REFRESH_LEASE_SK, Cond::Version(v)).await {
                    tracing::warn!(site, connection, error = %e, "refresh lease not released; it expires by itself");
                }
                result?
            }
        };
        match step {
            Step::Done(c) => return Ok(c),
            Step::Retry if Instant::now() >= deadline => {
                return Err(SfError::Transient(format!("refresh of {site}/{connection} did not finish in time")));
            }
            Step::Retry => {
                let wait = 40 * u64::from(attempt.min(5)) + u64::from(rand::random::<u8>() % 40);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
    }
}

async fn refresh_under_lease(deps: &Deps, site: &str, connection: &str, stale: Option<&str>) -> Result<Step, SfError> {
    let conn = load(deps, site, connection).await?.record;
    if conn.status != ConnectionStatus::Connected {
        return Err(not_connected(&conn));
    }
    let bundle = open_tokens(deps.keys.as_ref(), &conn).await?;
    if stale.is_some_and(|s| bundle.access_token != s) {
        return Ok(Step::Done(to_cached(&bundle, &conn)));
    }
    let Some(refresh_token) = bundle.refresh_token.clone() else {
        mark_needs_reauth(deps, site, connection, "no refresh token was granted").await?;
        return Err(SfError::NeedsReauth("no refresh token was granted (scope refresh_token missing)".into()));
    };
    let app = app_credentials(deps, &conn).await?;
    let login = oauth::login_base(&deps.settings, &conn.environment);
    let client = oauth::client(&deps.settings, &login, &app)?;
    let started = Instant::now();
    let answer =
        client.exchange_refresh_token(&RefreshToken::new(refresh_token.clone())).request_async(&OAuthHttp(deps.http.clone())).await;
    let response = match answer.map_err(oauth::token_error) {
        Ok(r) => r,
        Err(TokenError::ConcurrentRefresh) => {
            tracing::info!(site, connection, "Salesforce reports a concurrent refresh; re-reading the store");
            update_connection(deps, site, connection, |c| c.health.invalid_grants += 1).await?;
            return Ok(Step::Retry);
        }
        Err(TokenError::InvalidGrant(reason)) => {
            tracing::warn!(site, connection, reason = %reason, "refresh refused: connection needs a new authorization");
            mark_needs_reauth(deps, site, connection, &reason).await?;
            return Err(SfError::NeedsReauth(reason));
        }
        Err(e) => {
            tracing::warn!(site, connection, error = %e, "refresh failed");
            return Err(e.into());
        }
    };
    let fields = response.extra_fields();
    if !oauth::verify_signature(&app.client_secret, fields) {
        tracing::error!(site, connection, "refresh answer signature does not verify; ignored");
        return Err(SfError::Internal("the token endpoint's answer has a bad signature".into()));
    }
    let new_bundle = TokenBundle {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|r| r.secret().clone()).or(Some(refresh_token)),
    };
    let rotated = response.refresh_token().is_some();
    let sealed = seal_tokens(deps.keys.as_ref(), site, connection, &new_bundle).await?;
    let now = deps.clock.now();
    let instance = fields.instance_url.trim_end_matches('/').to_string();
    let org = oauth::ids_from_identity_url(&fields.id).map(|(o, _)| o);
    let saved = update_connection(deps, site, connection, |c| {
        c.tokens_sealed = Some(sealed.clone());
        c.last_refreshed_at = Some(now);
        c.health.invalid_grants = 0;
        if c.instance_url.as_deref() != Some(instance.as_str()) {
            if let Some(from) = c.instance_url.clone() {
                c.health.instance_changed = Some(Change { from, to: instance.clone(), at: now });
            }
            c.instance_url = Some(instance.clone());
        }
        if let (Some(new), Some(old)) = (&org, &c.org_id)
            && new != old
        {
            c.health.org_changed = Some(Change { from: old.clone(), to: new.clone(), at: now });
        }
    })
    .await;
    let saved = match saved {
        Ok(c) => c,
        Err(e) => {
            // The new tokens are not stored: with rotation, the old refresh token is now dead.
            tracing::error!(site, connection, error = %e, rotated, "refreshed tokens could not be stored");
            return Err(e);
        }
    };
    tracing::info!(site, connection, rotated, ms = started.elapsed().as_millis() as u64, "access token refreshed");
    Ok(Step::Done(to_cached(&new_bundle, &saved)))
}

/// Marks a connection `needs_reauth` after Salesforce refused its refresh token.
pub async fn mark_needs_reauth(deps: &Deps, site: &str, connection: &str, _reason: &str) -> Result<(), SfError> {
    update_connection(deps, site, connection, |c| {
        c.status = ConnectionStatus::NeedsReauth;
        c.health.invalid_grants += 1;
    })
    .await?;
    deps.salesforce.forget(site, connection);
    Ok(())
}
