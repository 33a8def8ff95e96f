//! The export ledger: per platform record (site, kind, id), the latest event received and what
//! was exported of it. It is the "last exported occurred_at" that stops stale overwrites, the
//! history a historical export replays, and where held and failed events wait.
//!
//! Latest wins at the Salesforce write: an exporter marks an entry exported only if the entry
//! is still at the version it admitted (or read) it at; otherwise it may have overwritten a
//! newer event in Salesforce, so that event is held and sent again ([`settle`]).

use std::collections::HashMap;

use forcelink::domain::keys;
use forcelink::domain::record::{self, Record, RecordError};
use forcelink::ports::BackendError;
use forcelink::ports::store::{MAX_BATCH_GET, transaction_chunks};
use forcelink::ports::{Cond, Index, Query, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
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

/// An event's place in its record's order: the later `occurred_at` wins; between distinct
/// events of one instant, the greater content hash (the same on every machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    pub occurred_at: OffsetDateTime,
    /// The first 8 bytes of the SHA-256 of the event's JSON text (keys sorted).
    pub hash: u64,
}

impl Rank {
    /// The rank of an event received as `raw`.
    pub fn of(occurred_at: OffsetDateTime, raw: &Value) -> Rank {
        let digest = Sha256::digest(raw.to_string().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Rank { occurred_at, hash: u64::from_be_bytes(first) }
    }
}

impl Entry {
    /// The rank of the entry's event.
    pub fn rank(&self) -> Rank {
        Rank::of(self.occurred_at, &self.event)
    }
}

impl Event {
    /// The event's rank.
    pub fn rank(&self) -> Rank {
        Rank::of(self.occurred_at, &self.raw)
    }
}

/// What the ledger says about an incoming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// Export it; the entry is stored (pending) at this version.
    Export { entry: Box<Entry>, version: u64 },
    /// A newer event of this record was received already: the entry at its version (none
    /// when the newer event came in the same batch).
    Stale(Option<(Box<Entry>, u64)>),
    /// This very event was exported already (a redelivery).
    Done,
}

/// An admission: skip, or write this entry under this condition.
enum Decision {
    Skip(Admit),
    Write(Box<Entry>, Cond),
}

fn decide(current: Option<(&Entry, u64)>, event: &Event, now_ms: i64) -> Decision {
    let rank = event.rank();
    if let Some((p, version)) = current {
        let prev = p.rank();
        if prev > rank {
            return Decision::Skip(Admit::Stale(Some((Box::new(p.clone()), version))));
        }
        if prev == rank && p.state == State::Exported {
            return Decision::Skip(Admit::Done);
        }
    }
    let prev = current.map(|(p, _)| p);
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
    Decision::Write(Box::new(entry), current.map_or(Cond::NotExists, |(_, v)| Cond::Version(v)))
}

/// The version a conditional write leaves (each write adds one; a new item starts at 1).
fn next_version(cond: Cond) -> u64 {
    match cond {
        Cond::Version(v) => v + 1,
        _ => 1,
    }
}

/// Records an incoming event unless it is stale or already exported.
pub async fn admit(store: &dyn Store, event: &Event, now_ms: i64) -> Result<Admit, RecordError> {
    let pk = keys::export_ledger_pk(&event.site);
    let sk = entry_sk(&event.kind, &event.id);
    for _ in 0..5 {
        let current = record::load::<Entry>(store, &pk, &sk).await?;
        let (entry, cond) = match decide(current.as_ref().map(|v| (&v.record, v.version)), event, now_ms) {
            Decision::Skip(admit) => return Ok(admit),
            Decision::Write(entry, cond) => (*entry, cond),
        };
        match record::save(store, &entry, cond).await {
            Ok(version) => return Ok(Admit::Export { entry: Box::new(entry), version }),
            Err(RecordError::Store(StoreError::ConditionFailed { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(RecordError::Store(StoreError::Backend(BackendError::msg(format!("ledger entry {pk}/{sk} kept changing")))))
}

/// Admits many events with one batch read and one transaction per 100 entries; a chunk whose
/// transaction fails (a concurrent change, an entry too large) is admitted event by event.
/// Of several events of one record, the highest ranked is admitted and the others are stale.
pub async fn admit_all(store: &dyn Store, events: &[&Event], now_ms: i64) -> Vec<Result<Admit, RecordError>> {
    let mut out: Vec<Option<Result<Admit, RecordError>>> = (0..events.len()).map(|_| None).collect();
    // The best event of each record.
    let mut best: HashMap<(String, String), usize> = HashMap::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let key = (keys::export_ledger_pk(&e.site), entry_sk(&e.kind, &e.id));
        match best.get(&key) {
            Some(&j) if events[j].rank() >= e.rank() => {}
            _ => {
                best.insert(key, i);
            }
        }
    }
    let mut winners: Vec<((String, String), usize)> = best.into_iter().collect();
    winners.sort_by_key(|(_, i)| *i);
    let mut writes: Vec<(usize, Entry, Cond)> = Vec::with_capacity(winners.len());
    for chunk in winners.chunks(MAX_BATCH_GET) {
        let keys: Vec<(String, String)> = chunk.iter().map(|(k, _)| k.clone()).collect();
        let found = match store.get_many(&keys).await {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "batch read of ledger entries failed; admitting one by one");
                for &(_, i) in chunk {
                    out[i] = Some(admit(store, events[i], now_ms).await);
                }
                continue;
            }
        };
        let mut current: HashMap<(String, String), (Entry, u64)> = HashMap::with_capacity(found.len());
        for item in &found {
            match record::decode::<Entry>(item) {
                Ok(entry) => {
                    current.insert((item.pk.clone(), item.sk.clone()), (entry, item.version));
                }
                Err(e) => tracing::error!(error = %e, "ledger entry unreadable"),
            }
        }
        for (key, i) in chunk {
            match decide(current.get(key).map(|(e, v)| (e, *v)), events[*i], now_ms) {
                Decision::Skip(admit) => out[*i] = Some(Ok(admit)),
                Decision::Write(entry, cond) => writes.push((*i, *entry, cond)),
            }
        }
    }
    for (i, written) in write_all(store, writes).await {
        out[i] = Some(match written {
            Some((entry, version)) => Ok(Admit::Export { entry: Box::new(entry), version }),
            None => admit(store, events[i], now_ms).await,
        });
    }
    out.into_iter().map(|o| o.unwrap_or(Ok(Admit::Stale(None)))).collect()
}

/// Writes entries in transactions of up to 100; each entry comes back with its new version, or
/// `None` where its transaction failed (for the caller to write it alone).
async fn write_all<K: Copy>(store: &dyn Store, writes: Vec<(K, Entry, Cond)>) -> Vec<(K, Option<(Entry, u64)>)> {
    let mut ops = Vec::with_capacity(writes.len());
    let mut by_key: HashMap<(String, String), (K, Entry, Cond)> = HashMap::with_capacity(writes.len());
    for (k, entry, cond) in writes {
        match entry.to_item() {
            Ok(item) => {
                by_key.insert((item.pk.clone(), item.sk.clone()), (k, entry, cond));
                ops.push(WriteOp::Put { item, cond });
            }
            Err(e) => tracing::error!(error = %e, "ledger entry does not encode"),
        }
    }
    let mut out = Vec::with_capacity(ops.len());
    for chunk in transaction_chunks(ops) {
        let keys: Vec<(String, String)> = chunk.iter().map(|op| (op.key().0.to_string(), op.key().1.to_string())).collect();
        let written = match store.transact(chunk).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "ledger transaction failed; writing its entries one by one");
                false
            }
        };
        for key in keys {
            if let Some((k, entry, cond)) = by_key.remove(&key) {
                out.push((k, written.then(|| (entry, next_version(cond)))));
            }
        }
    }
    out
}

/// How a write of an outcome ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Written (or the same event was settled as exported by another invocation).
    Written,
    /// Another event of the record is in the entry now; whoever admitted it finishes it.
    Superseded,
    /// Ours was written to Salesforce while a newer event was being, or had been, exported:
    /// Salesforce may hold ours over it. The newer entry is now held; send its event again.
    Resend(Box<Entry>),
}

/// Writes an entry's outcome if the entry is still at the version this exporter admitted (or
/// read) it at. Any other write since means another exporter touched the record: see
/// [`Settled`] for what happens then.
pub async fn settle(store: &dyn Store, entry: &Entry, version: u64, now_ms: i64) -> Result<Settled, RecordError> {
    let mut out = entry.clone();
    out.updated_ms = now_ms;
    match record::save(store, &out, Cond::Version(version)).await {
        Ok(_) => return Ok(Settled::Written),
        Err(RecordError::Store(StoreError::ConditionFailed { .. })) => {}
        Err(e) => return Err(e),
    }
    let rank = out.rank();
    for _ in 0..5 {
        let Some(cur) = record::load::<Entry>(store, &out.pk(), &out.sk()).await? else {
            match record::save(store, &out, Cond::NotExists).await {
                Ok(_) => return Ok(Settled::Written),
                Err(RecordError::Store(StoreError::ConditionFailed { .. })) => continue,
                Err(e) => return Err(e),
            }
        };
        let (cur, cur_version) = (cur.record, cur.version);
        let exported = out.state == State::Exported;
        let cond = Cond::Version(cur_version);
        let result = if cur.rank() == rank {
            if exported {
                // Settled by another exporter, or left for the one exporting it again.
                return Ok(if cur.state == State::Exported { Settled::Written } else { Settled::Superseded });
            }
            record::save(store, &out, cond).await.map(|_| Settled::Written)
        } else if exported && cur.rank() > rank && matches!(cur.state, State::Pending | State::Exported) {
            return invalidate(store, cur, cur_version, now_ms).await;
        } else {
            return Ok(Settled::Superseded);
        };
        match result {
            Err(RecordError::Store(StoreError::ConditionFailed { .. })) => continue,
            other => return other,
        }
    }
    Err(RecordError::Store(StoreError::Backend(BackendError::msg("ledger entry kept changing"))))
}

/// Marks an entry held because Salesforce may hold an older event of the record over it; the
/// caller sends its event again (and should that fail, the held list releases it). Any
/// exporter of it still in flight then fails to settle and leaves it to that second export.
pub async fn invalidate(store: &dyn Store, mut entry: Entry, version: u64, now_ms: i64) -> Result<Settled, RecordError> {
    entry.state = State::Held;
    entry.updated_ms = now_ms;
    match record::save(store, &entry, Cond::Version(version)).await {
        Ok(_) => Ok(Settled::Resend(Box::new(entry))),
        Err(RecordError::Store(StoreError::ConditionFailed { .. })) => {
            // Changed again: a newer admission exports it, or another invalidation holds it.
            Ok(Settled::Superseded)
        }
        Err(e) => Err(e),
    }
}

/// Settles many outcomes with one transaction per 100 entries; the entries of a failed
/// transaction are settled one by one. Results come in the order given.
pub async fn settle_all(store: &dyn Store, outcomes: Vec<(Entry, u64)>, now_ms: i64) -> Vec<Result<Settled, RecordError>> {
    let writes: Vec<(usize, Entry, Cond)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, (entry, version))| {
            let mut entry = entry.clone();
            entry.updated_ms = now_ms;
            (i, entry, Cond::Version(*version))
        })
        .collect();
    let mut out: Vec<Option<Result<Settled, RecordError>>> = (0..outcomes.len()).map(|_| None).collect();
    for (i, written) in write_all(store, writes).await {
        out[i] = Some(match written {
            Some(_) => Ok(Settled::Written),
            None => settle(store, &outcomes[i].0, outcomes[i].1, now_ms).await,
        });
    }
    out.into_iter()
        .zip(&outcomes)
        .map(|(o, (entry, _))| {
            o.unwrap_or_else(|| {
                let missing = BackendError::msg(format!("ledger entry {}/{}: no write result", entry.kind, entry.id));
                Err(RecordError::Store(StoreError::Backend(missing)))
            })
        })
        .collect()
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
