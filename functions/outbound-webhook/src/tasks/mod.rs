//! Workflow tasks, each run exactly once per notification.
//!
//! A task's completion is a marker item (`OBN#{org}` / `{notification}#task{n}`) written with
//! a "must not exist" condition, in the same transaction as the task's own store writes where
//! it has any (so a store-only task is exactly once, full stop). A task whose effect leaves the
//! store (an email) is marked only after the effect is accepted; see [`invitation`].

pub mod contact;
pub mod invitation;

use forcelink::Deps;
use forcelink::domain::keys;
use forcelink::domain::record::{self, Record};
use forcelink::domain::report::{RunStatus, TaskOutcome};
use forcelink::domain::site::Site;
use forcelink::domain::workflow::{Task, Workflow};
use forcelink::ports::StoreError;
use serde::{Deserialize, Serialize};

use forcelink::intake::StoredNotification;

/// A task failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Bad data or configuration: retrying will not help. The run fails for good.
    #[error("{0}")]
    Permanent(String),
    /// A backend failed: the run is retried from the queue; finished tasks are not redone.
    #[error("{0} (will be retried)")]
    Transient(String),
}

impl From<StoreError> for TaskError {
    /// A size refusal is permanent (the same write can never fit); other failures are transient.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooLarge { .. } => TaskError::Permanent(format!("store: {e}")),
            e => TaskError::Transient(format!("store: {e}")),
        }
    }
}

impl From<record::RecordError> for TaskError {
    fn from(e: record::RecordError) -> Self {
        match e {
            record::RecordError::Store(s) => s.into(),
            other => TaskError::Permanent(other.to_string()),
        }
    }
}

/// What a task works with.
pub struct Ctx<'a> {
    pub deps: &'a Deps,
    pub note: &'a StoredNotification,
    pub workflow: &'a Workflow,
    pub site: &'a Site,
    /// The task's position in the workflow (0-based).
    pub index: usize,
}

impl Ctx<'_> {
    /// Sort key of this task's completion marker.
    pub fn marker_sk(&self) -> String {
        format!("{}#task{}", self.note.id, self.index)
    }

    /// A further per-task key (`…#task{n}#{what}`).
    pub fn sub_sk(&self, what: &str) -> String {
        format!("{}#task{}#{what}", self.note.id, self.index)
    }

    /// The marker item to write when the task completes with `outcome`.
    pub fn marker(&self, outcome: &TaskOutcome) -> Result<forcelink::ports::Item, TaskError> {
        let mark = Marker { outcome: outcome.clone() };
        let body = serde_json::to_string(&mark).map_err(|e| TaskError::Permanent(e.to_string()))?;
        let mut item = forcelink::ports::Item::new(keys::notification_pk(&self.note.org), self.marker_sk(), body);
        item.expires_at = self.note.expires_at();
        Ok(item)
    }

    /// The outcome recorded by an earlier run of this task, if it completed.
    pub async fn completed(&self) -> Result<Option<TaskOutcome>, TaskError> {
        match self.deps.store.get(&keys::notification_pk(&self.note.org), &self.marker_sk()).await? {
            Some(item) => {
                let mark: Marker =
                    serde_json::from_str(&item.body).map_err(|e| TaskError::Permanent(format!("task marker does not parse: {e}")))?;
                Ok(Some(mark.outcome))
            }
            None => Ok(None),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Marker {
    outcome: TaskOutcome,
}

/// The task's name in run reports.
pub fn task_name(index: usize, task: &Task) -> String {
    match task {
        Task::UpsertContact { list, .. } => format!("{}. upsert_contact ({list})", index + 1),
        Task::SendInvitation { .. } => format!("{}. send_invitation", index + 1),
    }
}

/// Runs one task (or returns the outcome of its earlier completion).
pub async fn run(ctx: &Ctx<'_>, task: &Task) -> Result<TaskOutcome, TaskError> {
    if let Some(done) = ctx.completed().await? {
        return Ok(done);
    }
    match task {
        Task::UpsertContact { list, fields } => contact::run(ctx, list, fields).await,
        Task::SendInvitation { to, subject, body, target, sms } => {
            invitation::run(ctx, invitation::Spec { to, subject, body, target, sms: sms.as_ref() }).await
        }
    }
}

/// A succeeded outcome.
pub fn succeeded(ctx: &Ctx<'_>, task: &Task, output: String) -> TaskOutcome {
    TaskOutcome { name: task_name(ctx.index, task), status: RunStatus::Succeeded, output: Some(output), error: None }
}
