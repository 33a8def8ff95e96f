//! What the store remembers about links: each link's state (used up, revoked), keyed by its
//! nonce and expiring with it, counters with caps (renewals), and a record of every click for
//! reports.
//!
//! Single use is race-free: the first click writes the `used` state under `NotExists`, so of
//! two simultaneous clicks exactly one wins. Counters are race-free too: every increment is a
//! transaction conditioned on the versions it read.

use forcelink::domain::keys;
use forcelink::domain::record::{self, Record, RecordError};
use forcelink::links::{Link, LinkClaims};
use forcelink::ports::BackendError;
use forcelink::ports::{Cond, Item, Query, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::route::RouteKind;

/// A link's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// A single-use link that was clicked.
    Used,
    /// Withdrawn by an operator.
    Revoked,
}

#[derive(Serialize, Deserialize)]
struct StateBody {
    state: LinkState,
}

fn state_item(nonce: &str, expires_at: i64, state: LinkState) -> Result<Item, StoreError> {
    let body = serde_json::to_string(&StateBody { state }).map_err(|e| StoreError::Backend(BackendError::new("link state encoding", e)))?;
    Ok(Item::new(keys::link_pk(nonce), keys::LINK_STATE_SK, body).with_expiry(expires_at))
}

/// The link's state, if any.
pub async fn state(store: &dyn Store, nonce: &str) -> Result<Option<LinkState>, StoreError> {
    // An unreadable state is treated as revoked: refusing is the safe side.
    Ok(store
        .get(&keys::link_pk(nonce), keys::LINK_STATE_SK)
        .await?
        .map(|item| serde_json::from_str::<StateBody>(&item.body).map_or(LinkState::Revoked, |b| b.state)))
}

/// Uses up a single-use link: `Ok(None)` if this call did, else the state already there.
pub async fn consume(store: &dyn Store, claims: &LinkClaims) -> Result<Option<LinkState>, StoreError> {
    match store.put(state_item(&claims.nonce, claims.expires_at, LinkState::Used)?, Cond::NotExists).await {
        Ok(_) => Ok(None),
        Err(StoreError::ConditionFailed { .. }) => Ok(Some(state(store, &claims.nonce).await?.unwrap_or(LinkState::Used))),
        Err(e) => Err(e),
    }
}

/// Whether `link` or the original link it renews was revoked.
pub async fn is_revoked(store: &dyn Store, link: &Link) -> Result<bool, StoreError> {
    for nonce in [Some(link.claims.nonce.as_str()), link.renews.as_deref()].into_iter().flatten() {
        if state(store, nonce).await? == Some(LinkState::Revoked) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Revokes a link until it expires.
pub async fn revoke(store: &dyn Store, nonce: &str, expires_at: i64) -> Result<(), StoreError> {
    store.put(state_item(nonce, expires_at, LinkState::Revoked)?, Cond::Always).await.map(|_| ())
}

/// Marks a one-off key (a renewal ticket, a cooldown) as taken until `expires_at`; false if it
/// already was.
pub async fn take_once(store: &dyn Store, name: &str, expires_at: i64) -> Result<bool, StoreError> {
    match store.put(state_item(name, expires_at, LinkState::Used)?, Cond::NotExists).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// How a click ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Sent on to its destination.
    Redirected,
    Expired,
    /// A single-use link clicked again.
    Used,
    Revoked,
    /// The recipient is deactivated in the directory.
    Inactive,
}

/// One click on a genuine link, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    pub site: String,
    pub id: String,
    /// The directory user the link was for, or the contact id with `list`.
    pub user: String,
    /// The contact list, when the link was for a workflow contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    pub target: String,
    /// The link's nonce (not the token).
    pub nonce: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub outcome: Outcome,
    /// Where the click went, when it was redirected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_to: Option<RouteKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Click {
    /// A click on `claims` at `at`.
    pub fn new(claims: &LinkClaims, at: OffsetDateTime, outcome: Outcome) -> Self {
        Self {
            site: claims.site.clone(),
            id: uuid::Uuid::now_v7().simple().to_string(),
            user: claims.user.clone(),
            list: claims.list.clone(),
            target: claims.target.clone(),
            nonce: claims.nonce.clone(),
            at,
            outcome,
            routed_to: None,
            location: None,
        }
    }

    fn time_key(&self) -> String {
        format!("{}#{}", self.at.format(&Rfc3339).unwrap_or_default(), self.id)
    }
}

impl Record for Click {
    fn pk(&self) -> String {
        keys::clicks_pk(&self.site)
    }
    fn sk(&self) -> String {
        self.time_key()
    }
    fn gsi1(&self) -> Option<(String, String)> {
        Some((keys::link_clicks_index(&self.nonce), self.time_key()))
    }
}

/// Stores a click.
pub async fn record(store: &dyn Store, click: &Click) -> Result<(), RecordError> {
    record::save(store, click, Cond::Always).await.map(|_| ())
}

/// The clicks on one link (by nonce), oldest first.
pub async fn for_link(store: &dyn Store, nonce: &str) -> Result<Vec<Click>, RecordError> {
    record::list(store, Query::prefix(keys::link_clicks_index(nonce), "").on_gsi1()).await
}

/// A site's clicks, newest first, at most `limit` (following pages: one ends at 1 MB).
pub async fn recent(store: &dyn Store, site: &str, limit: usize) -> Result<Vec<Click>, RecordError> {
    let mut query = Query::prefix(keys::clicks_pk(site), "").reversed().limit(limit);
    let mut out = Vec::new();
    loop {
        let page = store.query(&query).await?;
        for item in &page.items {
            out.push(record::decode(item)?);
        }
        match page.next {
            Some(next) if out.len() < limit => query.after = Some(next),
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// Sort key of a counter (in the `LINK#…` partition of what it counts).
pub const COUNTER_SK: &str = "COUNT";
/// Attempts at a counter transaction that races with others (each lost race means another
/// request took a unit, so caps bound the retries).
const COUNTER_ATTEMPTS: usize = 12;

/// A counter with a cap, stored at `LINK#{name}` / [`COUNTER_SK`].
#[derive(Debug, Clone)]
pub struct Quota {
    pub name: String,
    pub cap: u32,
    /// Refuse a take within this many seconds of the previous one.
    pub cooldown: Option<i64>,
    /// Epoch seconds after which the counter is forgotten.
    pub expires_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CountBody {
    count: u32,
    /// Epoch seconds of the last take.
    last: i64,
}

/// What [`take`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// One unit taken from every quota; the new counts, in order.
    Yes(Vec<u32>),
    /// Nothing taken: the quota at this index is at its cap.
    Full(usize),
    /// Nothing taken: the quota at this index was taken from less than its cooldown ago.
    Cooling(usize),
}

/// Takes one unit from every quota at once (all or nothing), at `now` (epoch seconds).
pub async fn take(store: &dyn Store, quotas: &[Quota], now: i64) -> Result<Taken, StoreError> {
    for _ in 0..COUNTER_ATTEMPTS {
        let mut ops = Vec::with_capacity(quotas.len());
        let mut counts = Vec::with_capacity(quotas.len());
        for (i, quota) in quotas.iter().enumerate() {
            let (body, cond) = read_counter(store, &quota.name).await?;
            if body.count >= quota.cap {
                return Ok(Taken::Full(i));
            }
            if quota.cooldown.is_some_and(|secs| body.count > 0 && now < body.last.saturating_add(secs)) {
                return Ok(Taken::Cooling(i));
            }
            let next = CountBody { count: body.count + 1, last: now };
            let text = serde_json::to_string(&next).map_err(|e| StoreError::Backend(BackendError::new("counter encoding", e)))?;
            ops.push(WriteOp::Put { item: Item::new(keys::link_pk(&quota.name), COUNTER_SK, text).with_expiry(quota.expires_at), cond });
            counts.push(next.count);
        }
        match store.transact(ops).await {
            Ok(()) => return Ok(Taken::Yes(counts)),
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(BackendError::msg("a counter keeps changing; try again")))
}

/// A counter's value and the condition that it is still the same when written.
async fn read_counter(store: &dyn Store, name: &str) -> Result<(CountBody, Cond), StoreError> {
    Ok(match store.get(&keys::link_pk(name), COUNTER_SK).await? {
        // An unreadable counter is treated as full: refusing is the safe side.
        Some(item) => {
            let body = serde_json::from_str(&item.body).unwrap_or(CountBody { count: u32::MAX, last: 0 });
            (body, Cond::Version(item.version))
        }
        None => (CountBody::default(), Cond::NotExists),
    })
}
