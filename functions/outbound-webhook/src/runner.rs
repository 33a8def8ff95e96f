//! The workflow runner: consumes the workflow queue (SQS on AWS, `workflow` in queue.db
//! locally) and runs each notification's workflow, leaving one run report per notification.
//!
//! Per message, the site and workflow are read once; its notifications run [`CONCURRENCY`] at
//! a time, each started only while the [`Deadline`] leaves time for it. A run reads its
//! notification and state in one query, takes the lease with its first task's write, and ends
//! with one transaction: the state (finished tasks, done), the report and the record's seen
//! change. For the example workflow (contact upsert + invitation) that is 4 store calls, plus
//! the message's two reads shared by its notifications.
//!
//! A run is idempotent: finished notifications are skipped and finished tasks return their
//! recorded outcome. Only the attempt holding the run writes its report (the final transaction
//! is conditional on the state's version), so a losing concurrent attempt never overwrites the
//! winner's. A transient failure, a throttled send and a notification never started (the
//! deadline) fail the queue message (SQS partial batch failure), so it comes back and, after the
//! queue's receive limit, goes to the dead-letter queue; the report shows a failure meanwhile.
//! A size refusal is permanent: a workflow reading a field left out at intake (see
//! [`forcelink::intake`]) fails for good with that report, and a report too large to store
//! keeps its input out of it.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use forcelink::Deps;
use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::piped;
use forcelink::domain::record::{self, Record};
use forcelink::domain::report::{self, RunKind, RunReport, RunStatus, TaskOutcome};
use forcelink::domain::site::Site;
use forcelink::domain::{keys, workflow::Workflow};
use forcelink::intake::{self, RunRequest, RunState, StoredNotification};
use forcelink::ports::{Cond, StoreError, WriteOp};
use forcelink::queue_feed;
use futures::StreamExt;

use crate::deadline::{Deadline, FUNCTION_TIMEOUT};
use crate::lease::Held;
use crate::tasks::{self, Ctx, TaskError};

/// Notifications of one message run at once.
pub const CONCURRENCY: usize = 8;

/// Handles one batch from the workflow queue; the response lists the messages to retry.
pub async fn handle_batch(deps: &Deps, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let batch = Batch { deps, deadline, throttled: AtomicBool::new(false) };
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let request = match message.body.as_deref().map(serde_json::from_str::<RunRequest>) {
            Some(Ok(r)) => r,
            other => {
                // Not ours and never will be: fail it so it reaches the dead-letter queue intact.
                tracing::error!(message_id = %id, error = ?other.map(|r| r.err().map(|e| e.to_string())), "workflow queue message does not parse");
                response.batch_item_failures.push(failure(id));
                continue;
            }
        };
        if !batch.run_message(&request).await {
            response.batch_item_failures.push(failure(id));
        }
    }
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}

/// One batch's run: its deadline, and whether the mail service said to slow down.
struct Batch<'a> {
    deps: &'a Deps,
    deadline: Deadline,
    throttled: AtomicBool,
}

/// What a message's notifications run with, read once per message.
struct Setting {
    site: Option<Site>,
    workflow: Option<Workflow>,
}

impl Batch<'_> {
    /// Runs a message's notifications; `false` if any is to be retried (failed or not started).
    async fn run_message(&self, request: &RunRequest) -> bool {
        let setting = match self.setting(request).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(org = %request.org, error = %e, "workflow run will be retried");
                return false;
            }
        };
        let (setting, org) = (&setting, request.org.as_str());
        // Owned ids: futures over borrowed items would not be `Send` for every lifetime.
        let results: Vec<bool> = futures::stream::iter(request.notifications.iter().cloned())
            .map(|notification| async move { self.start(setting, org, &notification).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().all(|done| done)
    }

    /// The site and workflow of a message (from the first notification for older messages).
    async fn setting(&self, request: &RunRequest) -> Result<Setting, TaskError> {
        let store = self.deps.store.as_ref();
        let (site, workflow) = match (&request.site, &request.workflow) {
            (Some(site), Some(workflow)) => (site.clone(), workflow.clone()),
            _ => {
                let first = request.notifications.first().map(String::as_str).unwrap_or_default();
                match intake::load_run(store, &request.org, first).await?.note {
                    Some(note) => (note.site, note.workflow),
                    None => return Ok(Setting { site: None, workflow: None }),
                }
            }
        };
        let workflow = record::load::<Workflow>(store, &keys::site_pk(&site), &keys::workflow_sk(&workflow)).await?.map(|v| v.record);
        let site = Site::load(store, &site).await?.map(|v| v.record);
        Ok(Setting { site, workflow })
    }

    /// Runs one notification if there is time and no throttle; `true` when it needs no retry.
    async fn start(&self, setting: &Setting, org: &str, notification: &str) -> bool {
        if !self.deadline.allows_start() || self.throttled.load(Ordering::Relaxed) {
            tracing::info!(org, notification, "not started: too little time left or sending throttled; the message comes back");
            return false;
        }
        match run_notification(self.deps, setting, org, notification).await {
            Ok(()) => true,
            Err(e) => {
                if matches!(e, TaskError::Throttled(_)) {
                    self.throttled.store(true, Ordering::Relaxed);
                }
                tracing::warn!(org, notification, error = %e, "workflow run will be retried");
                false
            }
        }
    }
}

/// Runs one notification's workflow (or nothing, if it already ran). `Err` means "retry".
async fn run_notification(deps: &Deps, setting: &Setting, org: &str, notification: &str) -> Result<(), TaskError> {
    let store = deps.store.as_ref();
    let stored = intake::load_run(store, org, notification).await?;
    let Some(note) = stored.note else {
        tracing::warn!(org, notification, "notification to run is gone (expired)");
        return Ok(());
    };
    let (state, version) = match stored.state {
        Some(v) => (v.record, Some(v.version)),
        None => (RunState::new(&note), None),
    };
    if state.done {
        return Ok(());
    }
    let Some(mut held) = Held::take(state, version, deps.clock.epoch_secs()) else {
        return Err(TaskError::Transient("another attempt is running this notification".into()));
    };
    let mut report = RunReport {
        site: note.site.clone(),
        id: note.id.clone(),
        kind: RunKind::Workflow,
        name: note.workflow.clone(),
        status: RunStatus::Running,
        started_at: note.received_at,
        finished_at: None,
        counts: Counts::default(),
        input: input(&note),
        tasks: Vec::new(),
        error: None,
        expires_at: report::expiry(note.received_at, deps.settings.run_retention),
    };
    report.counts.set(Counter::Attempts, held.state.attempts);
    let omitted = setting.workflow.as_ref().and_then(|w| omitted_read(&note, w));
    let result = match (&setting.workflow, &setting.site) {
        (None, _) | (_, None) => {
            report.status = RunStatus::Failed;
            report.error = Some(format!("workflow {} of site {} no longer exists; nothing ran", note.workflow, note.site));
            Ok(())
        }
        (Some(w), _) if !w.enabled => {
            report.status = RunStatus::Skipped;
            report.error = Some("the workflow is disabled".into());
            Ok(())
        }
        (Some(_), _) if omitted.is_some() => {
            report.status = RunStatus::Failed;
            report.error = omitted;
            Ok(())
        }
        (Some(w), Some(site)) => match piped::check(&w.conditions, &note.fields) {
            Err(why) => {
                report.status = RunStatus::Skipped;
                report.error = Some(why);
                Ok(())
            }
            Ok(()) => run_tasks(deps, &note, w, site, &mut report, &mut held).await,
        },
    };
    report.finished_at = Some(deps.clock.now());
    held.state.done = result.is_ok();
    held.state.lease = None;
    held.state.sending = None;
    finish(deps, &note, &mut report, &mut held).await?;
    tracing::info!(site = %note.site, workflow = %note.workflow, notification = %note.id, status = ?report.status, "workflow run finished");
    result
}

async fn run_tasks(
    deps: &Deps,
    note: &StoredNotification,
    workflow: &Workflow,
    site: &Site,
    report: &mut RunReport,
    held: &mut Held,
) -> Result<(), TaskError> {
    let mut failed: Option<TaskError> = None;
    for (index, task) in workflow.tasks.iter().enumerate() {
        let name = tasks::task_name(index, task);
        if failed.is_some() {
            report.tasks.push(TaskOutcome {
                name,
                status: RunStatus::Skipped,
                output: None,
                error: Some("not run: an earlier task failed".into()),
            });
            continue;
        }
        let ctx = Ctx { deps, note, workflow, site, index };
        match tasks::run(&ctx, task, held).await {
            Ok(outcome) => report.tasks.push(outcome),
            Err(e) => {
                let status = if matches!(e, TaskError::Unknown(_)) { RunStatus::Unknown } else { RunStatus::Failed };
                report.tasks.push(TaskOutcome { name, status, output: None, error: Some(e.to_string()) });
                failed = Some(e);
            }
        }
    }
    let ok = report.tasks.iter().filter(|t| t.status == RunStatus::Succeeded).count() as u64;
    report.counts.set(Counter::TasksSucceeded, ok);
    match failed {
        None if report.tasks.iter().any(|t| t.status == RunStatus::Unknown) => {
            report.status = RunStatus::Unknown;
            Ok(())
        }
        None => {
            report.status = RunStatus::Succeeded;
            Ok(())
        }
        Some(e) => {
            report.status = RunStatus::Failed;
            report.error = Some(e.to_string());
            match e {
                TaskError::Permanent(_) => Ok(()),
                TaskError::Transient(_) | TaskError::Throttled(_) | TaskError::Unknown(_) => Err(e),
            }
        }
    }
}

/// The run's final write, one transaction: the state, the report and the record's seen
/// change. A report over the store's item limit is written without its input's fields (the
/// stored notification keeps them), saying so. Fails (to be retried) when another attempt
/// took the run over: the report is then that attempt's to write.
async fn finish(deps: &Deps, note: &StoredNotification, report: &mut RunReport, held: &mut Held) -> Result<(), TaskError> {
    let store = deps.store.as_ref();
    let seen = match intake::seen(note, deps.clock.now()) {
        Some(change) => Some(WriteOp::Put { item: change.to_item()?, cond: Cond::Always }),
        None => None,
    };
    let ops = |report: &RunReport| -> Result<Vec<WriteOp>, TaskError> {
        let mut ops = vec![WriteOp::Put { item: report.to_item()?, cond: Cond::Always }];
        ops.extend(seen.clone());
        Ok(ops)
    };
    let result = match held.transact(store, ops(report)?).await {
        Err(StoreError::TooLarge { size, limit, .. }) => {
            if let Some(input) = report.input.as_object_mut() {
                let why = format!("not kept here: the report would be {size} bytes, over the store's {limit}");
                input.insert("fields".into(), serde_json::Value::String(why));
            }
            held.transact(store, ops(report)?).await
        }
        other => other,
    };
    match result {
        Err(StoreError::ConditionFailed { .. }) => Err(crate::lease::lost()),
        other => Ok(other?),
    }
}

/// Why the workflow cannot run on `note`: it reads a field whose value was left out at intake.
fn omitted_read(note: &StoredNotification, workflow: &Workflow) -> Option<String> {
    let read = workflow.fields();
    let (name, bytes) = note.omitted.iter().find(|(name, _)| read.iter().any(|r| r.eq_ignore_ascii_case(name)))?;
    Some(format!(
        "field {name} was {bytes} bytes: the notification was over the store's 400 KB item limit, so it was acknowledged \
         without that value, and workflow {} reads it; nothing ran. Shorten the field's values or leave it out of the \
         outbound message (or of the workflow)",
        workflow.name
    ))
}

/// The run's input: the notification's fields, those left out, and where they came from.
fn input(note: &StoredNotification) -> serde_json::Value {
    serde_json::json!({
        "notification_id": note.id,
        "org": note.org,
        "object": note.object,
        "source": note.source,
        "fields": note.fields,
        "omitted_fields": note.omitted,
    })
}

/// Receives one batch from `queue` (waiting up to `wait`), runs it through [`handle_batch`]
/// and deletes the messages that did not fail, as the SQS event source mapping does.
/// Failed messages come back after `retry_after`, or (`None`) when the queue's visibility
/// timeout ends, as on Lambda. Returns how many messages were received.
/// `forcelink dev` and tests drive the queue with it.
pub async fn pump(
    deps: &Deps,
    queue: &dyn forcelink::ports::Queue,
    wait: std::time::Duration,
    retry_after: Option<std::time::Duration>,
) -> Result<usize, forcelink::ports::QueueError> {
    let batch = queue.receive(forcelink::ports::Receive { wait, ..forcelink::ports::Receive::default() }).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    let response = handle_batch(deps, queue_feed::sqs_event(&batch), Deadline::after(FUNCTION_TIMEOUT)).await;
    queue_feed::settle(queue, &batch, &response, retry_after).await;
    Ok(batch.len())
}
