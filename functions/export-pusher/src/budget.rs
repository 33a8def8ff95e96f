//! One API budget per org: the share of the daily request limit used (from `Sforce-Limit-Info`,
//! which the Salesforce client tracks per connection) and the pause after
//! `REQUEST_LIMIT_EXCEEDED` (TotalRequests), a store item with a TTL shared by every Lambda.

use forcelink::domain::keys;
use forcelink::ports::BackendError;
use forcelink::ports::{Cond, Item, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Sort key of an org's pause.
pub const PAUSE_SK: &str = "PAUSE";

/// Why and until when an org's export work is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub org_id: String,
    /// Epoch seconds.
    pub until: i64,
    pub reason: String,
}

/// The live pause of an org, if any.
pub async fn paused(store: &dyn Store, org_id: &str) -> Result<Option<Pause>, StoreError> {
    let Some(item) = store.get(&keys::org_budget_pk(org_id), PAUSE_SK).await? else { return Ok(None) };
    Ok(serde_json::from_str(&item.body).ok())
}

/// Pauses an org until `until` (epoch seconds); the item expires by itself.
pub async fn pause(store: &dyn Store, org_id: &str, until: i64, reason: &str) -> Result<(), StoreError> {
    let p = Pause { org_id: org_id.into(), until, reason: reason.into() };
    let body = serde_json::to_string(&p).map_err(|e| StoreError::Backend(BackendError::new("pause encoding", e)))?;
    tracing::warn!(org = org_id, until, reason, "org export paused");
    store.put(Item::new(keys::org_budget_pk(org_id), PAUSE_SK, body).with_expiry(until), Cond::Always).await.map(|_| ())
}

/// The used share of the daily limit, if known.
pub fn share(usage: Option<(u64, u64)>) -> Option<f64> {
    usage.filter(|(_, max)| *max > 0).map(|(used, max)| used as f64 / max as f64)
}
