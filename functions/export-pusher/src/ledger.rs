//! The export ledger: per platform record (site, kind, id), the latest event received and what
//! was exported of it. It is the "last exported occurred_at" that stops stale overwrites, the
//! history a historical export replays, and where held and failed events wait.

use forcelink::domain::keys;
use forcelink::domain::record::{self, Record, RecordError};
use forcelink::ports::BackendError;
use forcelink::ports::{Cond, Index, Query, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::event::Event;

/// Where a record's latest event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Received; being exported (its message is still in the queue).
    Pending,
    /// In Salesforce.
    Exported,
    /// Waiting for a live connection or for the org's pause to end; its message was deleted.
    Held,
    /// Refused for good (validation error, no mapping): in the dead-letter queue and a report.
    Failed,
}

/// A Salesforce or mapping error kept with the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// One platform record in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub site: String,
    pub kind: String,
    pub id: String,
    /// The latest event's time.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The latest event, as received.
    pub event: Value,
    pub state: State,
    /// `occurred_at` of the event last written to Salesforce.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub exported: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sf_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<EventError>,
    /// Epoch milliseconds of the last change (latency measurements).
    #[serde(default)]
    pub updated_ms: i64,
}

impl Record for Entry {
    fn pk(&self) -> String {
        keys::export_ledger_pk(&self.site)
    }
    fn sk(&self) -> String {
        entry_sk(&self.kind, &self.id)
    }
    fn gsi1(&self) -> Option<(String, String)> {
        let sk = format!("{}#{}", self.kind, self.id);
        match self.state {
            State::Held => Some((keys::export_held_index(&self.site), sk)),
            State::Failed => Some((keys::export_failed_index(&self.site), sk)),
            State::Pending | State::Exported => None,
        }
    }
}

/// Sort key prefix of ledger entries.
pub const ENTRY_PREFIX: &str = "EV#";

/// Sort key of one record's entry.
pub fn entry_sk(kind: &str, id: &str) -> String {
    format!("{ENTRY_PREFIX}{kind}#{id}")
}

/// What the ledger says about an incoming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// Export it; the entry is stored (pending) at this version.
    Export { entry: Box<Entry>, version: u64 },
    /// A newer event of this record was received already.
    Stale,
    /// This very event was exported already (a redelivery).
    Done,
}

/// Records an incoming event unless it is stale or already exported.
pub async fn admit(store: &dyn Store, event: &Event, now_ms: i64) -> Result<Admit, RecordError> {
    let pk = keys::export_ledger_pk(&event.site);
    let sk = entry_sk(&event.kind, &event.id);
    for _ in 0..5 {
        let current = record::load::<Entry>(store, &pk, &sk).await?;
        let (prev, cond) = match &current {
            Some(v) => (Some(&v.record), Cond::Version(v.version)),
            None => (None, Cond::NotExists),
        };
        if let Some(p) = prev {
            if p.occurred_at > event.occurred_at {
                return Ok(Admit::Stale);
            }
            if p.occurred_at == event.occurred_at && p.state == State::Exported {
                return Ok(Admit::Done);
            }
        }
        let entry = Entry {
            site: event.site.clone(),
            kind: event.kind.clone(),
            id: event.id.clone(),
            occurred_at: event.occurred_at,
            event: event.raw.clone(),
            state: State::Pending,
            exported: prev.and_then(|p| p.exported),
            sf_id: prev.and_then(|p| p.sf_id.clone()),
            error: None,
            updated_ms: now_ms,
        };
        match record::save(store, &entry, cond).await {
            Ok(version) => return Ok(Admit::Export { entry: Box::new(entry), version }),
            Err(RecordError::Store(StoreError::ConditionFailed { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(RecordError::Store(StoreError::Backend(BackendError::msg(format!("ledger entry {pk}/{sk} kept changing")))))
}

/// How a write of an outcome ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Written.
    Written,
    /// A newer event arrived meanwhile; `newer_exported` says it was already in Salesforce
    /// (so ours may have overwritten it there, and it must be sent again).
    Superseded { newer: Box<Entry>, newer_exported: bool },
}

/// Writes an entry's outcome if the entry still holds the same event.
pub async fn settle(store: &dyn Store, entry: &Entry, version: u64, now_ms: i64) -> Result<Settled, RecordError> {
    let mut out = entry.clone();
    out.updated_ms = now_ms;
    let mut cond = Cond::Version(version);
    for _ in 0..5 {
        match record::save(store, &out, cond).await {
            Ok(_) => return Ok(Settled::Written),
            Err(RecordError::Store(StoreError::ConditionFailed { .. })) => {
                let Some(cur) = record::load::<Entry>(store, &out.pk(), &out.sk()).await? else {
                    cond = Cond::NotExists;
                    continue;
                };
                if cur.record.occurred_at == out.occurred_at {
                    cond = Cond::Version(cur.version);
                    continue;
                }
                let newer_exported = cur.record.state == State::Exported && out.state == State::Exported;
                return Ok(Settled::Superseded { newer: Box::new(cur.record), newer_exported });
            }
            Err(e) => return Err(e),
        }
    }
    Err(RecordError::Store(StoreError::Backend(BackendError::msg("ledger entry kept changing"))))
}

/// Reads one entry with its version.
pub async fn load(store: &dyn Store, site: &str, kind: &str, id: &str) -> Result<Option<(Entry, u64)>, RecordError> {
    Ok(record::load::<Entry>(store, &keys::export_ledger_pk(site), &entry_sk(kind, id)).await?.map(|v| (v.record, v.version)))
}

/// Up to `limit` entries in a state list (`held` or `failed`), with their versions.
pub async fn listed(store: &dyn Store, site: &str, state: State, limit: usize) -> Result<Vec<(Entry, u64)>, RecordError> {
    let index = match state {
        State::Held => keys::export_held_index(site),
        State::Failed => keys::export_failed_index(site),
        _ => return Ok(Vec::new()),
    };
    let mut q = Query::prefix(index, "").on_gsi1().limit(limit.clamp(1, 1000));
    let mut out = Vec::new();
    loop {
        let page = store.query(&q).await?;
        for item in &page.items {
            out.push((record::decode::<Entry>(item)?, item.version));
        }
        match page.next {
            Some(n) if out.len() < limit => q.after = Some(n),
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// Counts entries in a state list (for `forcelink status`), up to `cap`.
pub async fn count(store: &dyn Store, site: &str, state: State, cap: usize) -> Result<usize, RecordError> {
    Ok(listed(store, site, state, cap).await?.len())
}

/// Every entry of a site, page by page, in key order, starting after `after` (a sort key).
pub async fn page(store: &dyn Store, site: &str, after: Option<String>, limit: usize) -> Result<(Vec<Entry>, Option<String>), RecordError> {
    let mut q = Query::prefix(keys::export_ledger_pk(site), ENTRY_PREFIX).limit(limit.clamp(1, 1000));
    q.index = Index::Primary;
    q.after = after;
    let page = store.query(&q).await?;
    let entries = page.items.iter().map(record::decode::<Entry>).collect::<Result<Vec<_>, _>>()?;
    Ok((entries, page.next))
}
