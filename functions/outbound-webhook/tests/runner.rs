//! The workflow runner under production conditions, on both backends: the calls a
//! notification costs on AWS, the Lambda deadline, email outcomes that are unknown (through a
//! real SMTP conversation that breaks after the message), a throttled mail service, and two
//! attempts racing for one run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use forcelink::Deps;
use forcelink::domain::Counter;
use forcelink::domain::report::{RunReport, RunStatus};
use forcelink::ports::{Email, MailError, Mailer, ManualClock, Message, Receive};
use forcelink::queue_feed;
use forcelink_stack::{Backend, Stack, both_backends};
use http::StatusCode;
use outbound_webhook::deadline::{Deadline, FUNCTION_TIMEOUT, RESERVE};
use outbound_webhook::lease::LEASE;
use outbound_webhook::runner::handle_batch;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

mod support;
use support::{ORG, contact_note, drain, envelope, reports};

/// The example workflow (contact upsert + invitation), once with each `on_unknown`.
const WORKFLOWS: &str = r#"
[[sites.workflows]]
name = "report"
object = "Contact"
tasks = [
    { type = "upsert_contact", list = "sf", fields = { email = "{Email}", first_name = "{FirstName}" } },
    { type = "send_invitation", to = "{Email}", subject = "Hi {FirstName}", body = "Go: {link}", target = "/surveys/1" },
]

[[sites.workflows]]
name = "resend"
object = "Contact"
tasks = [
    { type = "upsert_contact", list = "sf", fields = { email = "{Email}", first_name = "{FirstName}" } },
    { type = "send_invitation", to = "{Email}", subject = "Hi {FirstName}", body = "Go: {link}", target = "/surveys/1", on_unknown = "resend" },
]
"#;

async fn stack(backend: Backend, overrides: &[(&str, &str)]) -> Stack {
    support::start(backend, overrides, WORKFLOWS).await
}

/// Posts notifications `range` to `workflow`'s endpoint as one message.
async fn post(s: &Stack, workflow: &str, range: std::ops::Range<usize>) {
    let url = support::endpoint(s, workflow);
    let notes: Vec<String> = range.map(|n| contact_note(n, "2026-03-01T10:00:00.000Z", "P", "sf")).collect();
    let req = http::Request::post(url).header("content-type", "text/xml").body(Bytes::from(envelope(ORG, &notes))).unwrap();
    assert_eq!(outbound_webhook::handle(&s.deps, req).await.status(), StatusCode::OK);
}

/// Receives `n` run requests from the workflow queue (hidden for a minute).
async fn receive(s: &Stack, n: usize) -> Vec<Message> {
    let queue = s.deps.workflow_queue.clone().unwrap();
    let mut batch = Vec::new();
    for _ in 0..50 {
        let want = Receive { max: n - batch.len(), visibility: Some(Duration::from_secs(60)), wait: Duration::from_millis(100) };
        batch.extend(queue.receive(want).await.unwrap());
        if batch.len() == n {
            return batch;
        }
    }
    panic!("{n} run requests did not arrive");
}

fn far() -> Deadline {
    Deadline::after(FUNCTION_TIMEOUT)
}

/// At most 5 DynamoDB and SQS calls per notification for the example workflow, counted by the
/// AWS call meter on a 10-notification message (AWS only: the embedded backends make none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_costs_at_most_five_aws_calls() {
    const N: usize = 10;
    let s = stack(Backend::Moto, &[]).await;
    post(&s, "report", 0..N).await;
    let batch = receive(&s, 1).await;
    let before = s.deps.aws_calls.snapshot();
    let response = handle_batch(&s.deps, queue_feed::sqs_event(&batch), far()).await;
    let calls = s.deps.aws_calls.snapshot().since(&before);
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(s.outbox().len(), N);
    assert!(reports(&s).await.iter().all(|r| r.status == RunStatus::Succeeded));
    let store_and_queue: u64 = calls.0.iter().filter(|((service, _), _)| service == "DynamoDB" || service == "SQS").map(|(_, n)| n).sum();
    assert!(store_and_queue as f64 / N as f64 <= 5.0, "{store_and_queue} calls for {N} notifications: {calls}");
}

/// Sleeps past the deadline on its first send, then sends through the real mailer.
struct SlowFirst {
    inner: Arc<dyn Mailer>,
    until: tokio::time::Instant,
    sends: AtomicUsize,
}

#[async_trait]
impl Mailer for SlowFirst {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        if self.sends.fetch_add(1, Ordering::SeqCst) == 0 {
            tokio::time::sleep_until(self.until).await;
        }
        self.inner.send(email).await
    }
}

async fn the_deadline_stops_new_runs_and_loses_nothing(backend: Backend) {
    let mut s = stack(backend, &[]).await;
    post(&s, "report", 0..3).await;
    post(&s, "report", 3..6).await;
    let batch = receive(&s, 2).await;
    let deadline = Deadline::after(RESERVE + Duration::from_millis(300));
    let until = tokio::time::Instant::now() + RESERVE + Duration::from_millis(400);
    let real = s.deps.mailer.clone();
    s.deps.mailer = Arc::new(SlowFirst { inner: real.clone(), until, sends: AtomicUsize::new(0) });
    let response = handle_batch(&s.deps, queue_feed::sqs_event(&batch), deadline).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, [batch[1].id.as_str()], "the message started in time finishes; the other comes back");
    assert_eq!(s.outbox().len(), 3);
    assert_eq!(reports(&s).await.len(), 3, "nothing of the second message started");
    s.deps.mailer = real;
    queue_feed::settle(s.deps.workflow_queue.as_deref().unwrap(), &batch, &response, Some(Duration::ZERO)).await;
    drain(&s).await;
    assert_eq!(s.outbox().len(), 6, "each invitation once");
    let r = reports(&s).await;
    assert_eq!(r.len(), 6);
    assert!(r.iter().all(|r| r.status == RunStatus::Succeeded && r.counts.count(Counter::Attempts) == 1), "{r:?}");
    let ninety_days = 90 * 24 * 3600;
    assert!(r.iter().all(|r| r.expires_at == Some(r.started_at.unix_timestamp() + ninety_days)), "reports expire after 90 days");
}

/// What a test SMTP server does when a message has been written (after `DATA`'s final dot).
#[derive(Clone, Copy)]
enum AfterData {
    /// Closes the connection without an answer: the client cannot know.
    Drop,
    /// `451`: a temporary refusal (definite: not taken).
    Refuse,
    /// `250`: taken.
    Accept,
}

/// A small SMTP server answering each message with the next of `script` (the last one
/// repeats); returns its address and the count of messages it received in full.
async fn smtp_server(script: Vec<AfterData>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let (script, count) = (script.clone(), count.clone());
            tokio::spawn(async move {
                let _ = write.write_all(b"220 test ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        match script.get(n).or(script.last()).copied().unwrap_or(AfterData::Accept) {
                            AfterData::Drop => return,
                            AfterData::Refuse => b"451 4.3.0 try again later\r\n",
                            AfterData::Accept => b"250 2.0.0 queued\r\n",
                        }
                    } else {
                        match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                            Some("DATA") => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            Some("QUIT") => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        }
                    };
                    if write.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, received)
}

async fn an_unknown_send_is_reported_and_never_resent(backend: Backend) {
    let (addr, received) = smtp_server(vec![AfterData::Drop, AfterData::Accept]).await;
    let s = stack(backend, &[("FORCELINK_MAILER", &format!("smtp://{addr}"))]).await;
    post(&s, "report", 0..1).await;
    drain(&s).await;
    post(&s, "report", 0..1).await; // a redelivery
    drain(&s).await;
    assert_eq!(received.load(Ordering::SeqCst), 1, "one attempt; its outcome unknown, it is not sent again");
    let r = reports(&s).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, RunStatus::Unknown, "{r:?}");
    assert_eq!(r[0].counts.count(Counter::Attempts), 1);
    assert_eq!(r[0].tasks[1].status, RunStatus::Unknown);
    assert!(r[0].tasks[1].output.as_deref().unwrap_or_default().contains("outcome unknown"), "{:?}", r[0].tasks[1]);
}

async fn an_unknown_send_is_resent_when_the_workflow_says_so(backend: Backend) {
    let (addr, received) = smtp_server(vec![AfterData::Drop, AfterData::Accept]).await;
    let s = stack(backend, &[("FORCELINK_MAILER", &format!("smtp://{addr}"))]).await;
    post(&s, "resend", 0..1).await;
    drain(&s).await;
    assert_eq!(received.load(Ordering::SeqCst), 2, "sent again after the unknown outcome");
    let r = reports(&s).await;
    assert_eq!(r[0].status, RunStatus::Succeeded, "{r:?}");
    assert_eq!(r[0].counts.count(Counter::Attempts), 2);
}

async fn a_refused_send_is_retried_and_sent_once(backend: Backend) {
    let (addr, received) = smtp_server(vec![AfterData::Refuse, AfterData::Accept]).await;
    let mailer = format!("smtp://{addr}");
    let s = stack(backend, &[("FORCELINK_MAILER", &mailer), ("FORCELINK_RUN_RETENTION_DAYS", "7")]).await;
    post(&s, "report", 0..1).await;
    drain(&s).await;
    assert_eq!(received.load(Ordering::SeqCst), 2, "refused once (definite), then taken");
    let r = reports(&s).await;
    assert_eq!(r[0].status, RunStatus::Succeeded, "{r:?}");
    assert_eq!(r[0].counts.count(Counter::Attempts), 2);
    assert_eq!(r[0].expires_at, Some(r[0].started_at.unix_timestamp() + 7 * 24 * 3600), "FORCELINK_RUN_RETENTION_DAYS");
}

/// Throttles its first send (SES's `TooManyRequests`: no local mail service produces it).
struct ThrottledOnce {
    inner: Arc<dyn Mailer>,
    sends: AtomicUsize,
}

#[async_trait]
impl Mailer for ThrottledOnce {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        if self.sends.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(MailError::Throttled("maximum sending rate exceeded".into()));
        }
        self.inner.send(email).await
    }
}

async fn a_throttle_stops_sending_and_is_retried(backend: Backend) {
    let mut s = stack(backend, &[]).await;
    post(&s, "report", 0..30).await;
    post(&s, "report", 30..40).await;
    let batch = receive(&s, 2).await;
    s.deps.mailer = Arc::new(ThrottledOnce { inner: s.deps.mailer.clone(), sends: AtomicUsize::new(0) });
    let response = handle_batch(&s.deps, queue_feed::sqs_event(&batch), far()).await;
    assert_eq!(response.batch_item_failures.len(), 2, "the throttled message and the one after it come back");
    let second: Vec<String> = (30..40).map(support::nid).collect();
    assert!(reports(&s).await.iter().all(|r| !second.contains(&r.id)), "nothing of the second message started");
    assert!(s.outbox().len() < 30);
    queue_feed::settle(s.deps.workflow_queue.as_deref().unwrap(), &batch, &response, Some(Duration::ZERO)).await;
    drain(&s).await;
    assert_eq!(s.outbox().len(), 40, "each invitation once");
    assert!(reports(&s).await.iter().all(|r| r.status == RunStatus::Succeeded));
}

/// Stops inside its send until released, then fails definitely (nothing was sent).
struct Gate {
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl Mailer for Gate {
    async fn send(&self, _: &Email) -> Result<String, MailError> {
        self.entered.notify_one();
        self.release.notified().await;
        Err(MailError::Transport("connection refused".into()))
    }
}

/// Attempt A stops inside its send; its lease runs out; attempt B takes the run over and
/// finishes it; then A's send fails. A must not overwrite B's report.
async fn race(backend: Backend, workflow: &str) -> (Stack, RunReport) {
    let mut s = stack(backend, &[]).await;
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    s.deps.clock = clock.clone();
    post(&s, workflow, 0..1).await;
    let batch = receive(&s, 1).await;
    let gate = Arc::new(Gate { entered: Notify::new(), release: Notify::new() });
    let mut a: Deps = s.deps.clone();
    a.mailer = gate.clone();
    let event = queue_feed::sqs_event(&batch);
    let first = tokio::spawn({
        let event = event.clone();
        async move { handle_batch(&a, event, far()).await }
    });
    gate.entered.notified().await;
    clock.advance(LEASE + Duration::from_secs(1));
    let second = handle_batch(&s.deps, event, far()).await;
    assert!(second.batch_item_failures.is_empty(), "B finishes the run");
    gate.release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.batch_item_failures.len(), 1, "A lost the run: its message comes back");
    let r = reports(&s).await;
    assert_eq!(r.len(), 1);
    (s, r.into_iter().next().unwrap())
}

async fn a_losing_attempt_never_overwrites_the_winners_report(backend: Backend) {
    let (s, report) = race(backend, "resend").await;
    assert_eq!(report.status, RunStatus::Succeeded, "B's report stands: {report:?}");
    assert_eq!(report.counts.count(Counter::Attempts), 2);
    assert_eq!(s.outbox().len(), 1, "B resent what A left unknown; A sent nothing");
    drain(&s).await;
    assert_eq!(reports(&s).await[0].status, RunStatus::Succeeded, "the redelivered message finds the run done");
}

async fn a_run_that_ended_during_the_send_is_reported_unknown(backend: Backend) {
    let (s, report) = race(backend, "report").await;
    assert_eq!(report.status, RunStatus::Unknown, "{report:?}");
    assert!(report.tasks[1].output.as_deref().unwrap_or_default().contains("attempt 1 ended during the send"), "{report:?}");
    assert!(s.outbox().is_empty(), "not resent");
}

both_backends!(
    the_deadline_stops_new_runs_and_loses_nothing,
    an_unknown_send_is_reported_and_never_resent,
    an_unknown_send_is_resent_when_the_workflow_says_so,
    a_refused_send_is_retried_and_sent_once,
    a_throttle_stops_sending_and_is_retried,
    a_losing_attempt_never_overwrites_the_winners_report,
    a_run_that_ended_during_the_send_is_reported_unknown,
);
