//! The OAuth flow's state: one store item per started flow, keyed by the random `state`
//! value, binding site, connection, environment and the sealed PKCE verifier. It expires in
//! 10 minutes (store TTL, checked again against the clock) and is consumed once: a
//! transaction deletes it under its version and leaves a `USED` mark, so a replay is told
//! apart from an unknown state.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use forcelink::Deps;
use forcelink::domain::connection::Environment;
use forcelink::domain::keys;
use forcelink::ports::keyring::{KeyError, Sealed};
use forcelink::ports::store::{Cond, Item, StoreError, WriteOp};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A state lives this long.
pub const STATE_SECS: i64 = 600;
/// The used mark lives this long (replays after it read as unknown).
const USED_SECS: i64 = 86_400;

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Authorize a connection.
    Connect,
    /// Log a person in to the platform.
    Sso,
}

/// The stored state of one flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowState {
    pub purpose: Purpose,
    pub site: String,
    pub connection: String,
    pub environment: Environment,
    /// The PKCE verifier, sealed with the state value as associated data.
    pub verifier_sealed: String,
    /// SSO: where the platform sends the person after login (a checked relative path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Connect: the ticket or invitation that started the flow, consumed by its callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketRef>,
    /// SSO: the `frame-ancestors` of the callback's pages (the site's Salesforce origins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_ancestors: Option<String>,
    pub expires_at: i64,
}

/// The single-use ticket (a `forcelink connect` URL or an invitation) behind a connect flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    pub nonce: String,
    /// When the ticket itself expires (its used mark lives until then).
    pub exp: i64,
    /// An invitation's person: the only identity that may authorize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_to: Option<String>,
}

/// What a new flow binds.
#[derive(Debug, Clone)]
pub struct NewFlow<'a> {
    pub purpose: Purpose,
    pub site: &'a str,
    pub connection: &'a str,
    pub environment: &'a Environment,
    pub next: Option<String>,
    pub ticket: Option<TicketRef>,
    pub frame_ancestors: Option<String>,
}

/// Why a state was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("unknown or expired state")]
    Unknown,
    #[error("state already used")]
    Replayed,
    #[error("store")]
    Store(#[from] StoreError),
    #[error("keys")]
    Keys(#[from] KeyError),
    #[error("stored state does not decode")]
    Json(#[from] serde_json::Error),
}

fn aad(state: &str) -> String {
    format!("pkce:{state}")
}

/// A fresh random state value (256 bits, base64url).
pub fn new_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// Stores a new flow; returns its state value.
pub async fn create(deps: &Deps, new: NewFlow<'_>, verifier: &str) -> Result<String, StateError> {
    let state = new_state();
    let sealed = deps.keys.seal(verifier.as_bytes(), aad(&state).as_bytes()).await?;
    let expires_at = deps.clock.epoch_secs() + STATE_SECS;
    let body = FlowState {
        purpose: new.purpose,
        site: new.site.into(),
        connection: new.connection.into(),
        environment: new.environment.clone(),
        verifier_sealed: sealed.encode(),
        next: new.next,
        ticket: new.ticket,
        frame_ancestors: new.frame_ancestors,
        expires_at,
    };
    let item = Item::new(keys::oauth_state_pk(&state), keys::OAUTH_STATE_SK, serde_json::to_string(&body)?).with_expiry(expires_at);
    deps.store.put(item, Cond::NotExists).await?;
    Ok(state)
}

/// Consumes a flow's state (once) and opens its PKCE verifier.
pub async fn consume(deps: &Deps, state: &str) -> Result<(FlowState, Zeroizing<String>), StateError> {
    if state.is_empty() || state.len() > 128 {
        return Err(StateError::Unknown);
    }
    let pk = keys::oauth_state_pk(state);
    let Some(item) = deps.store.get(&pk, keys::OAUTH_STATE_SK).await? else {
        let used = deps.store.get(&pk, keys::OAUTH_USED_SK).await?;
        return Err(if used.is_some() { StateError::Replayed } else { StateError::Unknown });
    };
    let now = deps.clock.epoch_secs();
    let mark = Item::new(&pk, keys::OAUTH_USED_SK, "{}").with_expiry(now + USED_SECS);
    let ops = vec![
        WriteOp::Delete { pk: pk.clone(), sk: keys::OAUTH_STATE_SK.into(), cond: Cond::Version(item.version) },
        WriteOp::Put { item: mark, cond: Cond::NotExists },
    ];
    match deps.store.transact(ops).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. }) => return Err(StateError::Replayed),
        Err(e) => return Err(e.into()),
    }
    let flow: FlowState = serde_json::from_str(&item.body).map_err(|_| StateError::Unknown)?;
    if flow.expires_at <= now {
        return Err(StateError::Unknown);
    }
    let sealed = Sealed::decode(&flow.verifier_sealed)?;
    let plain = deps.keys.open(&sealed, aad(state).as_bytes()).await?;
    let verifier = String::from_utf8(plain.to_vec()).map_err(|_| StateError::Keys(KeyError::Decrypt))?;
    Ok((flow, Zeroizing::new(verifier)))
}
