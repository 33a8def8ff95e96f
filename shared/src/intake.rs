//! Durable intake of workflow notifications: every notification is stored, deduplicated on
//! (org, notification id), and queued for its run. The outbound webhook takes in Salesforce's
//! outbound messages this way before its Ack; the reconciliation poll takes in the changes
//! whose messages Salesforce dropped.
//!
//! Each notification is one item in a partition of its own (`OBN#{org}#{notification id}` /
//! `NOTE`, so one org's burst is spread over many partitions) written with a "must not exist"
//! condition (the dedupe mark *is* the payload), in one store transaction per message (chunked
//! within DynamoDB's 100 operations and 4 MB; a message carries at most 100 notifications in at
//! most 1 MiB, so it is one transaction). Its run keeps a [`RunState`] beside it (`RUN`), so
//! one query reads both. Both expire after [`DEDUPE_TTL`], longer than a queue message can live
//! (the workflow queue's retention, then its dead-letter queue's) plus a margin, so a late
//! redrive still finds its notification. Then one queue message names the notifications to run.
//! A redelivered notification whose run has not finished is queued again: the run is
//! idempotent, so a crash between the store commit and the queue send (which leaves Salesforce
//! without an Ack) loses nothing.
//!
//! A notification too large for one stored item (DynamoDB's 400 KB, e.g. a long text area
//! full of multi-byte text) is still stored and acknowledged: Salesforce resending it could
//! never make it fit. Its largest field values are left out until it fits, each named with its
//! size in [`StoredNotification::omitted`]; the run fails with that report if its workflow
//! reads one of them, and runs as usual otherwise.
//!
//! A run leaves a [`SeenChange`] per record and change (written blind, in the run's final
//! transaction): the latest of them is the latest change the workflow has seen, which is how
//! the reconciliation poll tells a dropped message from a delivered one.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Deps;
use crate::domain::piped::field;
use crate::domain::record::{self, Record, RecordError, Versioned};
use crate::domain::report::TaskOutcome;
use crate::domain::{ids, keys};
use crate::ports::store::{MAX_ITEM_BYTES, item_size, transaction_chunks};
use crate::ports::{Cond, Query, Store, StoreError, WriteOp};

/// One notification: its id and the record's selected fields (`None` for nil).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `04l…` notification id (or a reconciliation id, see [`Source::Reconciled`]).
    pub id: String,
    /// The sObject type, e.g. `Contact`.
    pub object: String,
    /// Field API name (exactly as sent) → value.
    pub fields: BTreeMap<String, Option<String>>,
}

/// Where a notification came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A Salesforce outbound message.
    #[default]
    OutboundMessage,
    /// The reconciliation poll found a change whose message never arrived.
    Reconciled,
}

/// The most notifications one message (and one queued run request) carries.
pub const MAX_PER_MESSAGE: usize = 100;

/// How long a notification (its dedupe mark) and its run state are kept: 21 days, longer than
/// its queue message can live (4 days on the workflow queue, then at most 14 on its
/// dead-letter queue: `MessageRetentionPeriod` in template.yaml) plus 3 days' margin, and far
/// past Salesforce's 24 h retries.
pub const DEDUPE_TTL: Duration = Duration::from_secs(21 * 24 * 3600);

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredNotification {
    /// 18-char org id.
    pub org: String,
    /// 18-char `04l…` notification id.
    pub id: String,
    pub site: String,
    /// The workflow's name (its record key within the site).
    pub workflow: String,
    pub workflow_id: String,
    /// The sObject type, as sent.
    pub object: String,
    /// The record's fields as sent (exact names; `None` for nil).
    pub fields: BTreeMap<String, Option<String>>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(default)]
    pub source: Source,
    /// Fields whose values were left out to fit the store's item limit → their size in bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<String, usize>,
}

impl StoredNotification {
    /// The record's `SystemModstamp`, when it was selected and parses.
    pub fn modstamp(&self) -> Option<OffsetDateTime> {
        modstamp(&self.fields)
    }
}

/// A record's `SystemModstamp` among its fields, when present and parseable.
pub fn modstamp(fields: &BTreeMap<String, Option<String>>) -> Option<OffsetDateTime> {
    field(fields, "SystemModstamp").and_then(|v| OffsetDateTime::parse(v.trim(), &Rfc3339).ok())
}

impl Record for StoredNotification {
    fn pk(&self) -> String {
        keys::notification_pk(&self.org, &self.id)
    }
    fn sk(&self) -> String {
        keys::NOTIFICATION_SK.into()
    }
    fn expires_at(&self) -> Option<i64> {
        Some(self.received_at.unix_timestamp() + DEDUPE_TTL.as_secs() as i64)
    }
}

/// A notification's run: how many attempts, which attempt holds it, which tasks finished.
/// Every write of it is conditional on the version read, so of two concurrent attempts only
/// one writes (and only that one writes the run report, in the same transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub org: String,
    pub id: String,
    /// Attempts that took the lease so far.
    pub attempts: u64,
    /// The run finished (succeeded, skipped, failed for good): it never runs again.
    pub done: bool,
    /// The attempt that holds the run, and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The position of an email task whose send may be under way: written before the send and
    /// cleared with its outcome, so an attempt that finds it left over knows the outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<usize>,
    /// Finished tasks' outcomes, by position in the workflow.
    #[serde(default)]
    pub tasks: BTreeMap<usize, TaskOutcome>,
    /// Epoch seconds: the notification's own expiry.
    pub expires_at: i64,
}

/// An attempt's hold on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub attempt: u64,
    /// Epoch seconds.
    pub until: i64,
}

impl RunState {
    /// The state of a notification's run before its first attempt.
    pub fn new(note: &StoredNotification) -> Self {
        Self {
            org: note.org.clone(),
            id: note.id.clone(),
            expires_at: note.received_at.unix_timestamp() + DEDUPE_TTL.as_secs() as i64,
            ..Self::default()
        }
    }
}

impl Record for RunState {
    fn pk(&self) -> String {
        keys::notification_pk(&self.org, &self.id)
    }
    fn sk(&self) -> String {
        keys::RUN_STATE_SK.into()
    }
    fn expires_at(&self) -> Option<i64> {
        Some(self.expires_at)
    }
}

/// A stored notification and its run's state, read together.
#[derive(Debug, Clone, Default)]
pub struct StoredRun {
    pub note: Option<StoredNotification>,
    /// `None` before the first attempt.
    pub state: Option<Versioned<RunState>>,
}

/// Reads a notification and its run's state in one query.
pub async fn load_run(store: &dyn Store, org: &str, id: &str) -> Result<StoredRun, RecordError> {
    let mut run = StoredRun::default();
    for item in record::all_items(store, Query::prefix(keys::notification_pk(org, id), "")).await? {
        match item.sk.as_str() {
            keys::NOTIFICATION_SK => run.note = Some(record::decode(&item)?),
            keys::RUN_STATE_SK => run.state = Some(Versioned { record: record::decode(&item)?, version: item.version }),
            _ => {}
        }
    }
    Ok(run)
}

/// The workflow queue's message: notifications of one org to run, in message order, and
/// the site and workflow they belong to (read once per message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    pub org: String,
    /// Absent in messages queued before it was added: read from the first notification then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    pub notifications: Vec<String>,
}

/// What intake did with a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intake {
    /// Newly stored notifications.
    pub stored: usize,
    /// Notifications seen before (redeliveries).
    pub duplicates: usize,
    /// Notifications queued for a run (new ones and unfinished redeliveries).
    pub queued: usize,
}

/// Intake failed; the endpoint answers a SOAP fault and Salesforce retries.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("store: {0}")]
    Store(#[from] RecordError),
    #[error("workflow queue: {0}")]
    Queue(#[from] crate::ports::QueueError),
    #[error("no workflow queue is configured (FORCELINK_WORKFLOW_QUEUE_URL)")]
    NoQueue,
    #[error("the store kept changing under concurrent deliveries")]
    Contended,
}

impl From<StoreError> for PersistError {
    fn from(e: StoreError) -> Self {
        PersistError::Store(e.into())
    }
}

/// Where a message's notifications belong.
pub struct Target<'a> {
    pub org: &'a str,
    pub site: &'a str,
    pub workflow: &'a str,
    pub workflow_id: &'a str,
    pub source: Source,
}

/// Stores the notifications (deduplicated) and queues their runs.
pub async fn intake(deps: &Deps, target: &Target<'_>, notifications: &[Notification]) -> Result<Intake, PersistError> {
    let queue = deps.workflow_queue.as_ref().ok_or(PersistError::NoQueue)?;
    let now = deps.clock.now();
    // One entry per distinct notification id, in message order.
    let mut seen = HashSet::with_capacity(notifications.len());
    let mut fresh: Vec<StoredNotification> = Vec::with_capacity(notifications.len());
    for n in notifications {
        let id = ids::to_18(&n.id).unwrap_or_else(|| n.id.clone());
        if seen.insert(id.clone()) {
            fresh.push(StoredNotification {
                org: target.org.to_string(),
                id,
                site: target.site.to_string(),
                workflow: target.workflow.to_string(),
                workflow_id: target.workflow_id.to_string(),
                object: n.object.clone(),
                fields: n.fields.clone(),
                received_at: now,
                source: target.source,
                omitted: BTreeMap::new(),
            });
        }
    }
    for note in &mut fresh {
        fit(note)?;
    }
    let mut intake = Intake { duplicates: notifications.len() - fresh.len(), ..Intake::default() };
    let mut to_run: Vec<String> = Vec::with_capacity(fresh.len());
    let mut known = false;
    for _attempt in 0..4 {
        if known {
            // A condition failed: someone stored some of these first. Sort them out.
            let mut still = Vec::with_capacity(fresh.len());
            for n in fresh {
                let run = load_run(deps.store.as_ref(), &n.org, &n.id).await?;
                match run.note {
                    Some(_) => {
                        intake.duplicates += 1;
                        if !run.state.is_some_and(|s| s.record.done) {
                            to_run.push(n.id);
                        }
                    }
                    None => still.push(n),
                }
            }
            fresh = still;
        }
        if fresh.is_empty() {
            return finish(queue.as_ref(), target, intake, to_run).await;
        }
        match store_all(deps, &fresh).await {
            Ok(()) => {
                intake.stored += fresh.len();
                to_run.extend(fresh.into_iter().map(|n| n.id));
                return finish(queue.as_ref(), target, intake, to_run).await;
            }
            Err(StoreError::ConditionFailed { .. }) => known = true,
            Err(e) => return Err(e.into()),
        }
    }
    Err(PersistError::Contended)
}

/// Leaves out `note`'s largest field values, one by one, until it fits in one stored item.
fn fit(note: &mut StoredNotification) -> Result<(), RecordError> {
    loop {
        let size = item_size(&note.to_item()?);
        if size <= MAX_ITEM_BYTES {
            return Ok(());
        }
        let largest = note.fields.iter().filter_map(|(name, v)| Some((name, v.as_ref()?.len()))).max_by_key(|(_, len)| *len);
        // Nothing left to leave out: the store refuses it, and the message gets a SOAP fault.
        let Some((name, len)) = largest.map(|(name, len)| (name.clone(), len)) else { return Ok(()) };
        tracing::warn!(org = %note.org, notification = %note.id, field = %name, bytes = len, item_bytes = size,
            "notification over the store's item limit; the field's value is left out");
        note.fields.remove(&name);
        note.omitted.insert(name, len);
    }
}

async fn store_all(deps: &Deps, notes: &[StoredNotification]) -> Result<(), StoreError> {
    let mut ops = Vec::with_capacity(notes.len());
    for n in notes {
        let item = n.to_item().map_err(|e| StoreError::Invalid(e.to_string()))?;
        ops.push(WriteOp::Put { item, cond: Cond::NotExists });
    }
    for chunk in transaction_chunks(ops) {
        deps.store.transact(chunk).await?;
    }
    Ok(())
}

async fn finish(
    queue: &dyn crate::ports::Queue,
    target: &Target<'_>,
    mut intake: Intake,
    to_run: Vec<String>,
) -> Result<Intake, PersistError> {
    intake.queued = to_run.len();
    if !to_run.is_empty() {
        let request = RunRequest {
            org: target.org.to_string(),
            site: Some(target.site.to_string()),
            workflow: Some(target.workflow.to_string()),
            notifications: to_run,
        };
        let body = serde_json::to_string(&request).map_err(|e| PersistError::Store(RecordError::Encode(e)))?;
        queue.send(body).await?;
    }
    Ok(intake)
}

/// A change of one record that a workflow has seen: the record's `SystemModstamp` from a
/// notification, or the notification's arrival when `SystemModstamp` was not selected. One
/// item per change, so a run writes it without reading; the latest is the one that counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenChange {
    pub site: String,
    pub workflow: String,
    /// The record's 18-char Id.
    pub record: String,
    #[serde(with = "time::serde::rfc3339")]
    pub upto: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub seen_at: OffsetDateTime,
}

impl Record for SeenChange {
    fn pk(&self) -> String {
        keys::seen_change_pk(&self.site, &self.workflow)
    }
    /// `{record}#{upto, epoch nanoseconds, zero-padded}`: a record's changes sort by time.
    fn sk(&self) -> String {
        format!("{}#{:020}", self.record, self.upto.unix_timestamp_nanos().max(0))
    }
    fn expires_at(&self) -> Option<i64> {
        Some(self.seen_at.unix_timestamp() + DEDUPE_TTL.as_secs() as i64)
    }
}

/// The change of its record that `note` shows its workflow; `None` without an `Id` field.
pub fn seen(note: &StoredNotification, now: OffsetDateTime) -> Option<SeenChange> {
    let record = field(&note.fields, "Id").and_then(ids::to_18)?;
    let upto = note.modstamp().unwrap_or(note.received_at);
    Some(SeenChange { site: note.site.clone(), workflow: note.workflow.clone(), record, upto, seen_at: now })
}

/// The latest change of `record` (18-char Id) that `workflow` has seen, if any.
pub async fn seen_upto(store: &dyn Store, site: &str, workflow: &str, record: &str) -> Result<Option<OffsetDateTime>, RecordError> {
    let page = store.query(&Query::prefix(keys::seen_change_pk(site, workflow), record).reversed().limit(1)).await?;
    Ok(match page.items.first() {
        Some(item) => Some(record::decode::<SeenChange>(item)?.upto),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::DEDUPE_TTL;

    /// The `MessageRetentionPeriod` of one of template.yaml's queues, in seconds.
    fn retention(template: &str, queue: &str) -> u64 {
        let from = template.find(&format!("\n  {queue}:\n")).unwrap_or_else(|| panic!("{queue} in template.yaml"));
        let line = template[from..].lines().find_map(|l| l.trim().strip_prefix("MessageRetentionPeriod: ")).expect("a retention");
        line.parse().expect("seconds")
    }

    /// A notification outlives its queue message: the workflow queue's retention, then the
    /// dead-letter queue's (a redrive after the longest stay still finds it), plus a day.
    #[test]
    fn notifications_outlive_their_queue_messages() {
        let template = include_str!("../../template.yaml");
        let queue = retention(template, "WorkflowQueue") + retention(template, "WorkflowDeadLetterQueue");
        assert!(DEDUPE_TTL.as_secs() >= queue + 24 * 3600, "{DEDUPE_TTL:?} vs {queue} s of queue retention");
    }
}
