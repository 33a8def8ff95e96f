//! Durable intake: every notification of an accepted message is stored, deduplicated on
//! (org, notification id), and queued for its run, all before the Ack.
//!
//! Each notification is one item under `OBN#{org}` / `{notification id}` written with a
//! "must not exist" condition (the dedupe mark *is* the payload), in one store transaction per
//! message (chunked at 100 operations; a message carries at most 100 notifications, so it is
//! one transaction). The item expires after [`DEDUPE_TTL`], far past Salesforce's 24 h retry
//! window. Then one queue message names the notifications to run. A redelivered notification
//! whose run has not finished is queued again: the run is idempotent, so a crash between the
//! store commit and the queue send (which leaves Salesforce without an Ack) loses nothing.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use forcelink::Deps;
use forcelink::domain::keys;
use forcelink::domain::record::{self, Record, RecordError};
use forcelink::ports::store::MAX_TRANSACTION_OPS;
use forcelink::ports::{Cond, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::soap::Notification;

/// How long a notification (and its dedupe mark) is kept: 7 days, well past the 24 h retries.
pub const DEDUPE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

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
    /// Whether its run has finished (succeeded, skipped or failed for good).
    #[serde(default)]
    pub done: bool,
}

impl Record for StoredNotification {
    fn pk(&self) -> String {
        keys::notification_pk(&self.org)
    }
    fn sk(&self) -> String {
        self.id.clone()
    }
    fn expires_at(&self) -> Option<i64> {
        Some(self.received_at.unix_timestamp() + DEDUPE_TTL.as_secs() as i64)
    }
}

/// The workflow queue's message: notifications of one org to run, in message order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    pub org: String,
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
    Queue(#[from] forcelink::ports::QueueError),
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
}

/// Stores the notifications (deduplicated) and queues their runs.
pub async fn intake(deps: &Deps, target: &Target<'_>, notifications: &[Notification]) -> Result<Intake, PersistError> {
    let queue = deps.workflow_queue.as_ref().ok_or(PersistError::NoQueue)?;
    let now = deps.clock.now();
    // One entry per distinct notification id, in message order.
    let mut seen = HashSet::with_capacity(notifications.len());
    let mut fresh: Vec<StoredNotification> = Vec::with_capacity(notifications.len());
    for n in notifications {
        let id = forcelink::domain::ids::to_18(&n.id).unwrap_or_else(|| n.id.clone());
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
                done: false,
            });
        }
    }
    let mut intake = Intake { duplicates: notifications.len() - fresh.len(), ..Intake::default() };
    let mut to_run: Vec<String> = Vec::with_capacity(fresh.len());
    let mut known = false;
    for _attempt in 0..4 {
        if known {
            // A condition failed: someone stored some of these first. Sort them out.
            let mut still = Vec::with_capacity(fresh.len());
            for n in fresh {
                match record::load::<StoredNotification>(deps.store.as_ref(), &n.pk(), &n.sk()).await? {
                    Some(existing) => {
                        intake.duplicates += 1;
                        if !existing.record.done {
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

async fn store_all(deps: &Deps, notes: &[StoredNotification]) -> Result<(), StoreError> {
    for chunk in notes.chunks(MAX_TRANSACTION_OPS) {
        let mut ops = Vec::with_capacity(chunk.len());
        for n in chunk {
            let item = n.to_item().map_err(|e| StoreError::Invalid(e.to_string()))?;
            ops.push(WriteOp::Put { item, cond: Cond::NotExists });
        }
        deps.store.transact(ops).await?;
    }
    Ok(())
}

async fn finish(
    queue: &dyn forcelink::ports::Queue,
    target: &Target<'_>,
    mut intake: Intake,
    to_run: Vec<String>,
) -> Result<Intake, PersistError> {
    intake.queued = to_run.len();
    if !to_run.is_empty() {
        let body = serde_json::to_string(&RunRequest { org: target.org.to_string(), notifications: to_run })
            .map_err(|e| PersistError::Store(RecordError::Encode(e.to_string())))?;
        queue.send(body).await?;
    }
    Ok(intake)
}
