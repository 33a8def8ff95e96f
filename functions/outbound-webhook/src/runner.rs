//! The workflow runner: consumes the workflow queue (SQS on AWS, `workflow` in queue.db
//! locally) and runs each notification's workflow, leaving one run report per notification.
//!
//! A run is idempotent: finished notifications are skipped, finished tasks return their
//! recorded outcome, and the report (keyed by the notification's arrival time and id) is
//! rewritten in place. A transient failure fails the queue message (SQS partial batch
//! failure), so it comes back and, after the queue's receive limit, goes to the dead-letter
//! queue; the report shows the failure meanwhile. A size refusal is permanent: a workflow
//! reading a field left out at intake (see [`forcelink::intake`]) fails for good with that
//! report, and a report too large to store keeps its input out of it.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use forcelink::Deps;
use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::keys;
use forcelink::domain::record::RecordError;
use forcelink::domain::record::{self, Record};
use forcelink::domain::report::{RunKind, RunReport, RunStatus, TaskOutcome};
use forcelink::domain::site::Site;
use forcelink::domain::workflow::Workflow;
use forcelink::ports::{Cond, Store, StoreError};
use forcelink::queue_feed;

use forcelink::domain::piped;
use forcelink::intake::{self, RunRequest, StoredNotification};

use crate::tasks::{self, Ctx, TaskError};

/// Handles one batch from the workflow queue; the response lists the messages to retry.
pub async fn handle_batch(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
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
        let mut retry = false;
        for notification in &request.notifications {
            if let Err(e) = run_notification(deps, &request.org, notification).await {
                tracing::warn!(org = %request.org, notification = %notification, error = %e, "workflow run will be retried");
                retry = true;
            }
        }
        if retry {
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

/// Runs one notification's workflow (or nothing, if it already ran). `Err` means "retry".
pub async fn run_notification(deps: &Deps, org: &str, notification: &str) -> Result<(), TaskError> {
    let store = deps.store.as_ref();
    let Some(stored) = record::load::<StoredNotification>(store, &keys::notification_pk(org), notification).await? else {
        tracing::warn!(org, notification, "notification to run is gone (expired)");
        return Ok(());
    };
    let note = stored.record;
    if note.done {
        return Ok(());
    }
    intake::mark_seen(store, &note, deps.clock.now()).await?;
    let site_pk = keys::site_pk(&note.site);
    let workflow = record::load::<Workflow>(store, &site_pk, &keys::workflow_sk(&note.workflow)).await?.map(|v| v.record);
    let site = Site::load(store, &note.site).await?.map(|v| v.record);
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
    };
    let attempts = match record::load::<RunReport>(store, &report.pk(), &report.sk()).await? {
        Some(previous) => previous.record.counts.count(Counter::Attempts) + 1,
        None => 1,
    };
    report.counts.set(Counter::Attempts, attempts);
    let omitted = workflow.as_ref().and_then(|w| omitted_read(&note, w));
    let result = match (&workflow, &site) {
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
            Ok(()) => run_tasks(deps, &note, w, site, &mut report).await,
        },
    };
    report.finished_at = Some(deps.clock.now());
    save_report(store, &mut report).await?;
    match result {
        Ok(()) => {
            let mut done = note.clone();
            done.done = true;
            record::save(store, &done, Cond::Always).await?;
            tracing::info!(site = %note.site, workflow = %note.workflow, notification = %note.id, status = ?report.status, "workflow run finished");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn run_tasks(
    deps: &Deps,
    note: &StoredNotification,
    workflow: &Workflow,
    site: &Site,
    report: &mut RunReport,
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
        match tasks::run(&ctx, task).await {
            Ok(outcome) => report.tasks.push(outcome),
            Err(e) => {
                report.tasks.push(TaskOutcome { name, status: RunStatus::Failed, output: None, error: Some(e.to_string()) });
                failed = Some(e);
            }
        }
    }
    let ok = report.tasks.iter().filter(|t| t.status == RunStatus::Succeeded).count() as u64;
    report.counts.set(Counter::TasksSucceeded, ok);
    match failed {
        None => {
            report.status = RunStatus::Succeeded;
            Ok(())
        }
        Some(e) => {
            report.status = RunStatus::Failed;
            report.error = Some(e.to_string());
            match e {
                TaskError::Permanent(_) => Ok(()),
                TaskError::Transient(_) => Err(e),
            }
        }
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

/// Saves the report; one over the store's item limit is saved without its input's fields
/// (the stored notification keeps them), saying so.
async fn save_report(store: &dyn Store, report: &mut RunReport) -> Result<(), RecordError> {
    match record::save(store, report, Cond::Always).await {
        Err(RecordError::Store(StoreError::TooLarge { size, limit, .. })) => {
            if let Some(input) = report.input.as_object_mut() {
                let why = format!("not kept here: the report would be {size} bytes, over the store's {limit}");
                input.insert("fields".into(), serde_json::Value::String(why));
            }
            record::save(store, report, Cond::Always).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
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
    let response = handle_batch(deps, queue_feed::sqs_event(&batch)).await;
    queue_feed::settle(queue, &batch, &response, retry_after).await;
    Ok(batch.len())
}
