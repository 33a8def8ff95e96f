//! Access tokens: sealed at rest, cached in memory, refreshed single-flight.
//!
//! Salesforce access tokens carry no lifetime, so a token is used until Salesforce answers
//! `401 INVALID_SESSION_ID`; then exactly one caller refreshes:
//!
//! 1. in this process, callers of one connection queue on an async mutex, and whoever gets it
//!    after a refresh finds the new token in the cache;
//! 2. across Lambdas, the refresher holds a lease item in the store (conditional put,
//!    [`LEASE_SECS`]); others re-read the connection until its sealed access token changes.
//!
//! The lease outlives its holder's token call: the call has its own [`TOKEN_TIMEOUT`], and the
//! holder calls only with [`MIN_LEASE_LEFT_SECS`] left. The holder re-reads the refresh token
//! from the store and writes the rotated one (and a changed `instance_url`) under a fence: one
//! transaction conditional on the connection's version and on the lease item being still ours.
//! A lost fence drops the new tokens (logged, an error). When the call's outcome is unknown
//! (timeout, transport failure) the lease is left to expire rather than released.
//! Salesforce's concurrent-refresh answer (`invalid_grant` "expired authorization code") means
//! someone else refreshed: re-read the store and retry. Another `invalid_grant` retries too
//! when the store meanwhile holds a different refresh token; only when the stored one is the
//! refused one is the connection marked `needs_reauth`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use oauth2::{RefreshToken, TokenResponse};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::SfError;
use super::oauth::{self, AppCredentials, OAuthHttp, SalesforceFields, SfTokenResponse, TokenError};
use crate::deps::Deps;
use crate::domain::connection::{Change, Connection, ConnectionStatus};
use crate::domain::keys;
use crate::domain::record::{self, RecordError};
use crate::ports::keyring::{KeyRing, Sealed};
use crate::ports::store::{Cond, Item, StoreError, WriteOp};

/// How long a refresh lease lives if its holder dies: well past the token call's timeout.
pub const LEASE_SECS: i64 = 60;
/// The token call's own timeout (the shared client's, `FORCELINK_HTTP_TIMEOUT_SECS`, may be longer).
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Lease seconds a holder must have left to call Salesforce: the call, the fenced write, margin.
pub const MIN_LEASE_LEFT_SECS: i64 = 30;
const _: () = assert!(TOKEN_TIMEOUT.as_secs() as i64 * 2 <= MIN_LEASE_LEFT_SECS && MIN_LEASE_LEFT_SECS < LEASE_SECS);
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

/// What [`SfError::Keys`] names when a connection's own client secret does not seal or open.
pub(crate) const CLIENT_SECRET: &str = "the connection's client secret";

/// The associated data a connection's tokens are sealed with.
pub fn tokens_aad(site: &str, connection: &str) -> String {
    format!("tokens:{site}/{connection}")
}

/// Seals a token bundle for `site`/`connection`.
pub async fn seal_tokens(keys: &dyn KeyRing, site: &str, connection: &str, bundle: &TokenBundle) -> Result<String, SfError> {
    let plain = Zeroizing::new(serde_json::to_vec(bundle).map_err(|source| SfError::Encode { what: "a token bundle", source })?);
    let sealed = keys
        .seal(&plain, tokens_aad(site, connection).as_bytes())
        .await
        .map_err(|e| SfError::keys(format!("sealing the tokens of {site}/{connection}"), e))?;
    Ok(sealed.encode())
}

/// Opens a connection's sealed tokens.
pub async fn open_tokens(keys: &dyn KeyRing, conn: &Connection) -> Result<TokenBundle, SfError> {
    let text = conn.tokens_sealed.as_deref().ok_or_else(|| not_connected(conn))?;
    let what = || format!("tokens of {}/{}", conn.site, conn.name);
    let sealed = Sealed::decode(text).map_err(|e| SfError::keys(what(), e))?;
    let plain = keys.open(&sealed, tokens_aad(&conn.site, &conn.name).as_bytes()).await.map_err(|e| SfError::keys(what(), e))?;
    serde_json::from_slice(&plain).map_err(|_| SfError::SecretUnreadable(format!("{} do not parse", what())))
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
        let sealed = Sealed::decode(&client.client_secret_sealed).map_err(|e| SfError::keys(CLIENT_SECRET, e))?;
        let aad = crate::config::client_secret_aad(&conn.site, &conn.name);
        let plain = deps.keys.open(&sealed, aad.as_bytes()).await.map_err(|e| SfError::keys(CLIENT_SECRET, e))?;
        let secret = String::from_utf8(plain.to_vec()).map_err(|_| SfError::SecretUnreadable("client secret is not UTF-8".into()))?;
        return Ok(AppCredentials { client_id: client.client_id.clone(), client_secret: Zeroizing::new(secret) });
    }
    forcelink_app(deps)
}

/// forcelink's own client app, from settings.
pub fn forcelink_app(deps: &Deps) -> Result<AppCredentials, SfError> {
    let sf = &deps.settings.salesforce;
    match (&sf.client_id, &sf.client_secret) {
        (Some(id), Some(secret)) => Ok(AppCredentials { client_id: id.clone(), client_secret: Zeroizing::new(secret.clone()) }),
        _ => Err(SfError::Invalid(
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
    Connection::load(deps.store.as_ref(), site, connection)
        .await?
        .ok_or_else(|| SfError::NotConnected(format!("site {site:?} has no connection {connection:?}")))
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
            Err(e) => return Err(e.into()),
        }
    }
    Err(SfError::Transient(format!("connection {site}/{connection} kept changing under us")))
}

/// Stores `tokens` (sealed) for `site`/`connection`, with its org and instance, and marks the
/// connection connected, outside any OAuth flow: for tokens obtained another way (the
/// simulator's, in the demo, benchmarks and tests). The connection must exist (e.g. from
/// `forcelink apply`).
pub async fn connect_with_tokens(
    deps: &Deps,
    site: &str,
    connection: &str,
    org_id: &str,
    instance_url: &str,
    tokens: &TokenBundle,
) -> Result<(), SfError> {
    let sealed = seal_tokens(deps.keys.as_ref(), site, connection, tokens).await?;
    update_connection(deps, site, connection, |c| {
        c.status = ConnectionStatus::Connected;
        c.org_id = Some(org_id.to_string());
        c.instance_url = Some(instance_url.to_string());
        c.tokens_sealed = Some(sealed.clone());
        c.health.problem = None;
        c.health.invalid_grants = 0;
    })
    .await?;
    deps.salesforce.forget(site, connection);
    Ok(())
}

enum Step {
    Done(Cached),
    Retry,
}

async fn refresh_shared(deps: &Deps, site: &str, connection: &str, stale: Option<&str>) -> Result<Cached, SfError> {
    let deadline = Instant::now() + REFRESH_WAIT;
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
        let step = match Lease::acquire(deps, site, connection).await? {
            None => Step::Retry,
            Some(lease) => {
                let mut holder = Holder { deps, site, connection, lease, keep_lease: false };
                let result = holder.run(stale).await;
                holder.finish().await;
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

/// A held refresh lease: its store item's version is the fence the rotated tokens are written under.
struct Lease {
    pk: String,
    version: u64,
    /// Epoch seconds, by `deps.clock`.
    expires_at: i64,
}

impl Lease {
    /// Takes the connection's lease for [`LEASE_SECS`]; `None` while someone else holds it.
    async fn acquire(deps: &Deps, site: &str, connection: &str) -> Result<Option<Self>, SfError> {
        let pk = keys::refresh_lease_pk(site, connection);
        let expires_at = deps.clock.epoch_secs() + LEASE_SECS;
        let body = format!("{{\"owner\":\"{}\"}}", uuid::Uuid::new_v4());
        let item = Item::new(&pk, keys::REFRESH_LEASE_SK, body).with_expiry(expires_at);
        match deps.store.put(item, Cond::NotExists).await {
            Ok(version) => Ok(Some(Self { pk, version, expires_at })),
            Err(StoreError::ConditionFailed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Seconds of lease left.
    fn left(&self, deps: &Deps) -> i64 {
        self.expires_at - deps.clock.epoch_secs()
    }

    /// The transaction check that the lease is still ours (same item, same version, unexpired).
    fn fence(&self) -> WriteOp {
        WriteOp::Check { pk: self.pk.clone(), sk: keys::REFRESH_LEASE_SK.into(), cond: Cond::Version(self.version) }
    }
}

/// Why a fenced write did not happen.
enum Fence {
    /// The connection changed since it was read: read it again.
    Changed,
    /// The lease expired or someone else took it.
    Lost,
    Failed(SfError),
}

/// The lease holder's refresh, one method per phase.
struct Holder<'a> {
    deps: &'a Deps,
    site: &'a str,
    connection: &'a str,
    lease: Lease,
    /// Set when Salesforce may have rotated without us knowing: the lease then runs out by
    /// itself, so nobody sends the same refresh token while that request may still be processed.
    keep_lease: bool,
}

impl Holder<'_> {
    async fn run(&mut self, stale: Option<&str>) -> Result<Step, SfError> {
        let (deps, site, connection) = (self.deps, self.site, self.connection);
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
        let left = self.lease.left(deps);
        if left < MIN_LEASE_LEFT_SECS {
            tracing::info!(site, connection, left, "refresh lease too short to call Salesforce; taking a fresh one");
            return Ok(Step::Retry);
        }
        let started = Instant::now();
        let response = match self.call(&conn, &app, &refresh_token).await? {
            Ok(r) => r,
            Err(e) => return self.refused(e, &refresh_token).await,
        };
        let fields = response.extra_fields();
        if !oauth::verify_signature(&app.client_secret, fields) {
            tracing::error!(site, connection, "refresh answer signature does not verify; ignored");
            return Err(SfError::Token(TokenError::BadResponse("bad signature".into())));
        }
        let rotated = response.refresh_token().is_some();
        let new_bundle = TokenBundle {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|r| r.secret().clone()).or(Some(refresh_token)),
        };
        let step = self.store(&conn, &new_bundle, fields, rotated).await?;
        tracing::info!(site, connection, rotated, ms = started.elapsed().as_millis() as u64, "access token refreshed");
        Ok(step)
    }

    /// The token call, cut off at [`TOKEN_TIMEOUT`] (the shared client's timeout may be longer).
    async fn call(
        &self,
        conn: &Connection,
        app: &AppCredentials,
        refresh_token: &str,
    ) -> Result<Result<SfTokenResponse, TokenError>, SfError> {
        let login = oauth::login_base(&self.deps.settings, &conn.environment);
        let client = oauth::client(&self.deps.settings, &login, app)?;
        let http = OAuthHttp(self.deps.http.clone());
        let token = RefreshToken::new(refresh_token.to_string());
        let answer = tokio::time::timeout(TOKEN_TIMEOUT, client.exchange_refresh_token(&token).request_async(&http)).await;
        Ok(match answer {
            Ok(result) => result.map_err(oauth::token_error),
            Err(_) => Err(TokenError::Unavailable(format!("no answer within {} s", TOKEN_TIMEOUT.as_secs()))),
        })
    }

    /// Salesforce refused or did not answer.
    async fn refused(&mut self, error: TokenError, sent: &str) -> Result<Step, SfError> {
        let (deps, site, connection) = (self.deps, self.site, self.connection);
        match error {
            TokenError::ConcurrentRefresh => {
                tracing::info!(site, connection, "Salesforce reports a concurrent refresh; re-reading the store");
                update_connection(deps, site, connection, |c| c.health.invalid_grants += 1).await?;
                Ok(Step::Retry)
            }
            TokenError::InvalidGrant(reason) => self.invalid_grant(sent, reason).await,
            e @ (TokenError::Unavailable(_) | TokenError::Transport(_)) => {
                self.keep_lease = true;
                tracing::warn!(site, connection, error = %e, "refresh outcome unknown; the lease is left to expire");
                Err(e.into())
            }
            e => {
                tracing::warn!(site, connection, error = %e, "refresh failed");
                Err(e.into())
            }
        }
    }

    /// `invalid_grant`: retry when the store holds a newer refresh token than the one refused;
    /// otherwise the connection needs a new authorization.
    async fn invalid_grant(&self, sent: &str, reason: String) -> Result<Step, SfError> {
        let (deps, site, connection) = (self.deps, self.site, self.connection);
        let record::Versioned { mut record, version } = load(deps, site, connection).await?;
        if record.status != ConnectionStatus::Connected {
            return Err(not_connected(&record));
        }
        let stored = open_tokens(deps.keys.as_ref(), &record).await?;
        if stored.refresh_token.as_deref() != Some(sent) {
            tracing::info!(site, connection, "refresh token refused, but someone stored a newer one; retrying with it");
            return Ok(Step::Retry);
        }
        tracing::warn!(site, connection, reason = %reason, "refresh refused: connection needs a new authorization");
        record.status = ConnectionStatus::NeedsReauth;
        record.health.invalid_grants += 1;
        record.health.problem = Some(super::health::classify(&reason));
        match self.fenced_save(&record, version).await {
            Ok(()) => {
                deps.salesforce.forget(site, connection);
                Err(SfError::NeedsReauth(reason))
            }
            Err(Fence::Changed) => Ok(Step::Retry),
            Err(Fence::Lost) => Err(SfError::Transient(format!("refresh lease of {site}/{connection} lost"))),
            Err(Fence::Failed(e)) => Err(e),
        }
    }

    /// Stores the new tokens under the fence: the connection at its version and the lease still ours.
    async fn store(&self, read: &Connection, bundle: &TokenBundle, fields: &SalesforceFields, rotated: bool) -> Result<Step, SfError> {
        let (deps, site, connection) = (self.deps, self.site, self.connection);
        let sealed = seal_tokens(deps.keys.as_ref(), site, connection, bundle).await?;
        let now = deps.clock.now();
        let instance = fields.instance_url.trim_end_matches('/').to_string();
        let org = oauth::ids_from_identity_url(&fields.id).map(|(o, _)| o);
        for _ in 0..8 {
            let record::Versioned { mut record, version } = load(deps, site, connection).await?;
            if record.tokens_sealed != read.tokens_sealed {
                tracing::warn!(
                    site,
                    connection,
                    rotated,
                    "new tokens were stored during the refresh (a new authorization); ours are dropped"
                );
                return Ok(Step::Retry);
            }
            apply_refresh(&mut record, &sealed, &instance, org.as_deref(), now);
            match self.fenced_save(&record, version).await {
                Ok(()) => return Ok(Step::Done(to_cached(bundle, &record))),
                Err(Fence::Changed) => continue,
                Err(Fence::Lost) => {
                    // Salesforce has rotated; the new refresh token dies with this process. Nothing
                    // is revoked: the lease's new holder decides with what the store holds.
                    tracing::error!(site, connection, rotated, "refresh lease lost before the new tokens were stored; they are dropped");
                    return Err(SfError::Transient(format!(
                        "refresh of {site}/{connection} lost its lease; the new tokens were not stored"
                    )));
                }
                Err(Fence::Failed(e)) => {
                    tracing::error!(site, connection, rotated, error = %e, "refreshed tokens could not be stored");
                    return Err(e);
                }
            }
        }
        Err(SfError::Transient(format!("connection {site}/{connection} kept changing under us")))
    }

    /// Writes `record` if it is still at `version` and the lease is still ours, in one transaction.
    async fn fenced_save(&self, record: &Connection, version: u64) -> Result<(), Fence> {
        let item = record::Record::to_item(record).map_err(|e| Fence::Failed(e.into()))?;
        let ops = vec![WriteOp::Put { item, cond: Cond::Version(version) }, self.lease.fence()];
        match self.deps.store.transact(ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { pk, .. }) if pk == self.lease.pk => Err(Fence::Lost),
            Err(StoreError::ConditionFailed { .. }) => Err(Fence::Changed),
            Err(e) => Err(Fence::Failed(e.into())),
        }
    }

    /// Releases the lease, unless the outcome is unknown (then it expires by itself).
    async fn finish(self) {
        if self.keep_lease {
            return;
        }
        if let Err(e) = self.deps.store.delete(&self.lease.pk, keys::REFRESH_LEASE_SK, Cond::Version(self.lease.version)).await {
            tracing::warn!(site = self.site, connection = self.connection, error = %e, "refresh lease not released; it expires by itself");
        }
    }
}

/// A refresh's changes to the connection: tokens, time, instance and org changes noticed.
fn apply_refresh(c: &mut Connection, sealed: &str, instance: &str, org: Option<&str>, now: time::OffsetDateTime) {
    c.tokens_sealed = Some(sealed.to_string());
    c.last_refreshed_at = Some(now);
    c.health.invalid_grants = 0;
    c.health.problem = None;
    if c.instance_url.as_deref() != Some(instance) {
        if let Some(from) = c.instance_url.clone() {
            c.health.instance_changed = Some(Change { from, to: instance.to_string(), at: now });
        }
        c.instance_url = Some(instance.to_string());
    }
    if let (Some(new), Some(old)) = (org, &c.org_id)
        && new != old
    {
        c.health.org_changed = Some(Change { from: old.clone(), to: new.to_string(), at: now });
    }
}

/// Marks a connection `needs_reauth` after Salesforce refused its refresh token for `reason`.
pub async fn mark_needs_reauth(deps: &Deps, site: &str, connection: &str, reason: &str) -> Result<(), SfError> {
    let problem = super::health::classify(reason);
    update_connection(deps, site, connection, |c| {
        c.status = ConnectionStatus::NeedsReauth;
        c.health.invalid_grants += 1;
        c.health.problem = Some(problem);
    })
    .await?;
    deps.salesforce.forget(site, connection);
    Ok(())
}
