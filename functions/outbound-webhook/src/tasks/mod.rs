//! Workflow tasks, each run exactly once per notification.
//!
//! A task's completion is its outcome in the run's state ([`forcelink::intake::RunState`]),
//! written with the version condition of the attempt that holds the run ([`Held`]), in the
//! same transaction as the task's own store writes where it has any (so a store-only task is
//! exactly once, full stop). A task whose effect leaves the store (an email) is announced in
//! the state before the effect and recorded after it; see [`invitation`].

pub mod contact;
pub mod invitation;

use forcelink::Deps;
use forcelink::domain::record;
use forcelink::domain::report::{RunStatus, TaskOutcome};
use forcelink::domain::site::Site;
use forcelink::domain::workflow::{Task, Workflow};
use forcelink::intake::StoredNotification;
use forcelink::ports::StoreError;

use crate::lease::Held;

/// A task failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Bad data or configuration: retrying will not help. The run fails for good.
    #[error("{0}")]
    Permanent(String),
    /// A backend failed: the run is retried from the queue; finished tasks are not redone.
    #[error("{0} (will be retried)")]
    Transient(String),
    /// An email's send ended with an unknown outcome and the task says to send it again: the
    /// run is retried and sends it again.
    #[error("{0} (will be retried)")]
    Unknown(String),
    /// The mail service's sending rate was reached: retried later, and no more sends start
    /// in this batch.
    #[error("{0} (will be retried)")]
    Throttled(String),
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

/// The task's name in run reports.
pub fn task_name(index: usize, task: &Task) -> String {
    match task {
        Task::UpsertContact { list, .. } => format!("{}. upsert_contact ({list})", index + 1),
        Task::SendInvitation { .. } => format!("{}. send_invitation", index + 1),
    }
}

/// Runs one task (or returns the outcome of its earlier completion).
pub async fn run(ctx: &Ctx<'_>, task: &Task, held: &mut Held) -> Result<TaskOutcome, TaskError> {
    if let Some(done) = held.state.tasks.get(&ctx.index) {
        return Ok(done.clone());
    }
    match task {
        Task::UpsertContact { list, fields } => contact::run(ctx, list, fields, held).await,
        Task::SendInvitation { to, subject, body, target, sms, on_unknown } => {
            invitation::run(ctx, invitation::Spec { to, subject, body, target, sms: sms.as_ref(), on_unknown: *on_unknown }, held).await
        }
    }
}

/// Records `outcome` as task `ctx.index`'s, and announces the send of the next task if it is
/// an email (so the state write before a send is the one that says it may be under way).
pub fn complete(ctx: &Ctx<'_>, held: &mut Held, outcome: &TaskOutcome) {
    held.state.tasks.insert(ctx.index, outcome.clone());
    let next = ctx.index + 1;
    held.state.sending = matches!(ctx.workflow.tasks.get(next), Some(Task::SendInvitation { .. })).then_some(next);
}

/// A succeeded outcome.
pub fn succeeded(ctx: &Ctx<'_>, task: &Task, output: String) -> TaskOutcome {
    TaskOutcome { name: task_name(ctx.index, task), status: RunStatus::Succeeded, output: Some(output), error: None }
}
