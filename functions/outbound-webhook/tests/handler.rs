//! The endpoint and the runner together on both backends (the harness
//! `forcelink_stack::Stack`: embedded, and moto's DynamoDB and SQS), with hand-written SOAP:
//! several prefixes, nils, entities, 100 notifications, duplicates, reordering, failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use forcelink::domain::Counter;
use forcelink::domain::record;
use forcelink::domain::report::RunStatus;
use forcelink::domain::workflow::endpoint_secret;
use forcelink::domain::{Contact, keys};
use forcelink::ports::{Email, MailError, Mailer, Query};
use forcelink_stack::{Backend, Stack, both_backends};
use http::StatusCode;

mod support;
use support::{ORG, ORG15, cid, contact_fields, contact_note, drain, envelope, nid, note, reports};

const WORKFLOWS: &str = r#"
[[sites.workflows]]
name = "contacts"
object = "Contact"
conditions = [{ field = "Survey_Opt_In__c", op = "equals", value = "true" }]
tasks = [
    { type = "upsert_contact", list = "sf", fields = { email = "{Email}", first_name = "{FirstName}" } },
    { type = "send_invitation", to = "{Email}", subject = "Hi {FirstName}", body = "Go: {link}", target = "/surveys/1", sms = { phone_field = "MobilePhone", sender = "ACME" } },
]

[[sites.workflows]]
name = "leads"
object = "Lead"
tasks = [{ type = "upsert_contact", list = "leads", fields = { email = "{Email}" } }]

[[sites.workflows]]
name = "cases"
object = "Case"
tasks = [{ type = "upsert_contact", list = "cases", fields = { email = "{SuppliedEmail}", notes = "{Description}" } }]
"#;

struct World {
    stack: Stack,
    contacts_url: String,
    leads_url: String,
    cases_url: String,
}

impl std::ops::Deref for World {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }
}

async fn stack(backend: Backend) -> World {
    let stack = support::start(backend, &[], WORKFLOWS).await;
    let url = |name: &str| support::endpoint(&stack, name);
    World { contacts_url: url("contacts"), leads_url: url("leads"), cases_url: url("cases"), stack }
}

async fn post(s: &World, url: &str, body: String) -> (StatusCode, String) {
    let req = http::Request::post(url).header("content-type", "text/xml; charset=utf-8").body(Bytes::from(body)).unwrap();
    let resp = outbound_webhook::handle(&s.deps, req).await;
    (resp.status(), String::from_utf8_lossy(resp.body()).to_string())
}

async fn contacts(s: &World, list: &str) -> Vec<Contact> {
    record::list(s.deps.store.as_ref(), Query::prefix(keys::directory_pk("acme"), format!("{}{list}#", keys::CONTACT_PREFIX)))
        .await
        .unwrap()
}

/// How many of notifications `0..upto` are stored.
async fn stored_count(s: &World, upto: usize) -> usize {
    let mut n = 0;
    for i in 0..upto {
        n += usize::from(forcelink::intake::load_run(s.deps.store.as_ref(), ORG, &nid(i)).await.unwrap().note.is_some());
    }
    n
}

const ACK: &str = "<notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></notificationsResponse>";

async fn one_message_runs_every_task_once(backend: Backend) {
    let s = stack(backend).await;
    let body = envelope(ORG, &[contact_note(2, "2026-03-01T10:00:00.000Z", "Ana &amp; Bo", "sf")]);
    let (status, text) = post(&s, &s.contacts_url, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(ACK));
    // Nothing ran before the Ack.
    assert!(s.outbox().is_empty());
    assert!(contacts(&s, "sf").await.is_empty());
    drain(&s).await;
    let c = contacts(&s, "sf").await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].email, "p2@example.com");
    assert_eq!(c[0].fields["first_name"], "Ana & Bo");
    assert_eq!(c[0].embedded["Survey_Opt_In__c"].as_deref(), Some("true"));
    let mails = s.outbox();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: Hi Ana & Bo"));
    assert!(mails[0].contains("/l/"), "{}", mails[0]);
    let sms = record::all_items(s.deps.store.as_ref(), Query::prefix(keys::sms_pk("acme"), "")).await.unwrap();
    assert_eq!(sms.len(), 1);
    let r = reports(&s).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, RunStatus::Succeeded);
    assert_eq!(r[0].tasks.len(), 2);
    assert_eq!(r[0].input["fields"]["Email"], "p2@example.com");

    // The same message again (a redelivery): acknowledged, nothing redone.
    let (status, _) = post(&s, &s.contacts_url, body).await;
    assert_eq!(status, StatusCode::OK);
    drain(&s).await;
    assert_eq!(s.outbox().len(), 1);
    assert_eq!(reports(&s).await.len(), 1);
}

async fn a_hundred_notifications_with_mixed_prefixes_and_nils(backend: Backend) {
    let s = stack(backend).await;
    let notes: Vec<String> = (0..100).map(|n| contact_note(n, "2026-03-01T10:00:00.000Z", "P", ["sf", "q", "ns1"][n % 3])).collect();
    let body = envelope(ORG15, &notes); // the 15-char org id is the same org
    let (status, text) = post(&s, &s.contacts_url, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(stored_count(&s, 120).await, 100);
    // Redelivered at once, then a reordered batch overlapping it: no duplicates anywhere.
    assert_eq!(post(&s, &s.contacts_url, body).await.0, StatusCode::OK);
    let mut again: Vec<String> = (50..120).rev().map(|n| contact_note(n, "2026-03-01T10:00:00.000Z", "P", "x")).collect();
    again.truncate(70);
    assert_eq!(post(&s, &s.contacts_url, envelope(ORG, &again)).await.0, StatusCode::OK);
    drain(&s).await;
    assert_eq!(contacts(&s, "sf").await.len(), 120);
    assert_eq!(s.outbox().len(), 120);
    let r = reports(&s).await;
    assert_eq!(r.len(), 120);
    assert!(r.iter().all(|r| r.status == RunStatus::Succeeded));
    let c = contacts(&s, "sf").await;
    let odd = c.iter().find(|c| c.id == cid(1)).unwrap();
    assert_eq!(odd.embedded["MobilePhone"], None);
    let sms = record::all_items(s.deps.store.as_ref(), Query::prefix(keys::sms_pk("acme"), "")).await.unwrap();
    assert_eq!(sms.len(), 60);
}

async fn older_data_never_overwrites_newer(backend: Backend) {
    let s = stack(backend).await;
    // Notification 2 (newer data) arrives before notification 1 (older data) for the same record.
    let newer = contact_fields(7, "2026-03-02T10:00:00.000Z", "New");
    let older = contact_fields(7, "2026-03-01T10:00:00.000Z", "Old");
    let as_note = |id: usize, f: &[(String, Option<String>)]| {
        let refs: Vec<(&str, Option<&str>)> = f.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        note(&nid(id), "Contact", "sf", &refs)
    };
    assert_eq!(post(&s, &s.contacts_url, envelope(ORG, &[as_note(2, &newer)])).await.0, StatusCode::OK);
    drain(&s).await;
    assert_eq!(post(&s, &s.contacts_url, envelope(ORG, &[as_note(1, &older)])).await.0, StatusCode::OK);
    drain(&s).await;
    let c = contacts(&s, "sf").await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].fields["first_name"], "New");
    let r = reports(&s).await;
    assert!(r.iter().any(|r| r.tasks[0].output.as_deref().unwrap_or("").contains("newer data")), "{r:?}");
}

async fn rejections_store_nothing(backend: Backend) {
    let s = stack(backend).await;
    let good = envelope(ORG, &[contact_note(1, "2026-03-01T10:00:00.000Z", "A", "sf")]);
    // Wrong secret, unknown workflow: 404.
    let wrong = s.contacts_url.rsplit_once('/').unwrap().0.to_string() + "/k1.AAAA";
    assert_eq!(post(&s, &wrong, good.clone()).await.0, StatusCode::NOT_FOUND);
    let unknown = format!("/outbound/wf_nope/{}", endpoint_secret(s.deps.keys.as_ref(), "wf_nope"));
    assert_eq!(post(&s, &unknown, good.clone()).await.0, StatusCode::NOT_FOUND);
    // Another org: fault.
    let (status, text) = post(&s, &s.contacts_url, envelope("00D5g000000ZZZZEAK", &[contact_note(1, "x", "A", "sf")])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("<faultcode>soapenv:Client</faultcode>") && text.contains("is not the org"), "{text}");
    // A Contact message on the Lead workflow: fault with a hint.
    let (status, text) = post(&s, &s.leads_url, good.clone()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("runs on Lead records, but this outbound message sends Contact records"), "{text}");
    // DTD and entities.
    let dtd = good.replacen("<soapenv:Envelope", "<!DOCTYPE x [<!ENTITY e \"boom\">]><soapenv:Envelope", 1);
    let (status, text) = post(&s, &s.contacts_url, dtd).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("DTD"), "{text}");
    // Over 1 MiB, by Content-Length, before the body is looked at.
    let req = http::Request::post(&s.contacts_url).header("content-length", "2000000").body(Bytes::new()).unwrap();
    assert_eq!(outbound_webhook::handle(&s.deps, req).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let big = good.replace("<sf:FirstName>A", &format!("<sf:FirstName>{}", "A".repeat(1024 * 1024)));
    assert_eq!(post(&s, &s.contacts_url, big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // 101 notifications.
    let many: Vec<String> = (0..101).map(|n| contact_note(n, "x", "A", "sf")).collect();
    assert_eq!(post(&s, &s.contacts_url, envelope(ORG, &many)).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(stored_count(&s, 101).await, 0);
    assert_eq!(s.deps.workflow_queue.as_ref().unwrap().depth().await.unwrap(), 0);
}

async fn conditions_skip_and_the_report_says_why(backend: Backend) {
    let s = stack(backend).await;
    let id = cid(3);
    let f = [("Id", Some(id.as_str())), ("Email", Some("x@example.com")), ("Survey_Opt_In__c", Some("false"))];
    let owned: Vec<(&str, Option<&str>)> = f.to_vec();
    assert_eq!(post(&s, &s.contacts_url, envelope(ORG, &[note(&nid(3), "Contact", "sf", &owned)])).await.0, StatusCode::OK);
    drain(&s).await;
    let r = reports(&s).await;
    assert_eq!(r[0].status, RunStatus::Skipped);
    assert!(r[0].error.as_deref().unwrap().contains("Survey_Opt_In__c"));
    assert!(s.outbox().is_empty());
}

/// Fails the first `fail` sends, then delegates.
struct Flaky {
    inner: Arc<dyn Mailer>,
    fail: AtomicUsize,
}

#[async_trait]
impl Mailer for Flaky {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        if self.fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(MailError::Transport("connection reset".into()));
        }
        self.inner.send(email).await
    }
}

async fn partial_failures_retry_without_redoing_finished_tasks(backend: Backend) {
    let mut s = stack(backend).await;
    s.deps.mailer = Arc::new(Flaky { inner: s.deps.mailer.clone(), fail: AtomicUsize::new(3) });
    let notes: Vec<String> = (0..5).map(|n| contact_note(n, "2026-03-01T10:00:00.000Z", "P", "sf")).collect();
    assert_eq!(post(&s, &s.contacts_url, envelope(ORG, &notes)).await.0, StatusCode::OK);
    let q = s.deps.workflow_queue.clone().unwrap();
    outbound_webhook::runner::pump(&s.deps, q.as_ref(), Duration::ZERO, Some(Duration::ZERO)).await.unwrap();
    let r = reports(&s).await;
    assert!(r.iter().any(|r| r.status == RunStatus::Failed && r.error.as_deref().unwrap_or("").contains("will be retried")));
    drain(&s).await;
    assert_eq!(s.outbox().len(), 5);
    assert_eq!(contacts(&s, "sf").await.len(), 5);
    let r = reports(&s).await;
    assert_eq!(r.len(), 5);
    assert!(r.iter().all(|r| r.status == RunStatus::Succeeded), "{r:?}");
    assert!(r.iter().any(|r| r.counts.count(Counter::Attempts) > 1));
}

/// A 600 KB long text area: the notification cannot be one stored item (400 KB).
const LONG_TEXT: usize = 600 * 1024;

async fn an_oversized_field_the_workflow_does_not_read_is_left_out_and_the_run_goes_on(backend: Backend) {
    let s = stack(backend).await;
    let mut f = contact_fields(4, "2026-03-01T10:00:00.000Z", "Ana");
    f.push(("Description".into(), Some("é".repeat(LONG_TEXT / 2))));
    let refs: Vec<(&str, Option<&str>)> = f.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
    let (status, text) = post(&s, &s.contacts_url, envelope(ORG, &[note(&nid(4), "Contact", "sf", &refs)])).await;
    assert_eq!(status, StatusCode::OK, "acknowledged: Salesforce resending it could never make it fit: {text}");
    assert!(text.contains(ACK));
    let stored = forcelink::intake::load_run(s.deps.store.as_ref(), ORG, &nid(4)).await.unwrap().note.expect("stored");
    assert_eq!(stored.omitted.get("Description"), Some(&LONG_TEXT), "the left-out field is named with its size");
    assert!(!stored.fields.contains_key("Description"));
    assert_eq!(stored.fields["Email"].as_deref(), Some("p4@example.com"), "the other fields are kept");
    drain(&s).await;
    let r = reports(&s).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, RunStatus::Succeeded, "{:?}", r[0].error);
    assert_eq!(r[0].input["omitted_fields"]["Description"], LONG_TEXT, "the report shows what was left out");
    assert_eq!(s.outbox().len(), 1, "the invitation went out");
    assert_eq!(contacts(&s, "sf").await.len(), 1);
}

async fn an_oversized_field_the_workflow_reads_fails_the_run_once_with_a_report(backend: Backend) {
    let s = stack(backend).await;
    let long = "x".repeat(LONG_TEXT);
    let fields = [("Id", Some("5005g00000AbCdEAAV")), ("SuppliedEmail", Some("case@example.com")), ("Description", Some(long.as_str()))];
    let (status, text) = post(&s, &s.cases_url, envelope(ORG, &[note(&nid(7), "Case", "sf", &fields)])).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    drain(&s).await;
    let r = reports(&s).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, RunStatus::Failed);
    let error = r[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("Description") && error.contains(&LONG_TEXT.to_string()) && error.contains("400 KB"), "{error}");
    assert_eq!(r[0].counts.count(Counter::Attempts), 1, "a permanent failure: run once, not retried");
    assert!(contacts(&s, "cases").await.is_empty(), "nothing ran");
    assert_eq!(s.deps.workflow_queue.as_ref().unwrap().depth().await.unwrap(), 0, "the run request is settled, not redelivered");
}

both_backends!(
    one_message_runs_every_task_once,
    a_hundred_notifications_with_mixed_prefixes_and_nils,
    older_data_never_overwrites_newer,
    rejections_store_nothing,
    conditions_skip_and_the_report_says_why,
    partial_failures_retry_without_redoing_finished_tasks,
    an_oversized_field_the_workflow_does_not_read_is_left_out_and_the_run_goes_on,
    an_oversized_field_the_workflow_reads_fails_the_run_once_with_a_report,
);
