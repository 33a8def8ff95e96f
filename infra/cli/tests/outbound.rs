//! Outbound messages end to end: the simulator's outbound messages drive the real
//! `forcelink dev` binary over HTTP. Single messages, a batch of 100, duplicates and
//! reordering, retries after the endpoint was down; contacts, outbox emails and run reports
//! must come out exactly right, on both backends (`forcelink dev` on the stack's settings,
//! moto's SQS feeding its workflow runner there). Plus an ignored load test for the Ack
//! latency on the embedded backends (BENCHMARKS.md).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use forcelink::Deps;
use forcelink::domain::record;
use forcelink::domain::report::{RunReport, RunStatus};
use forcelink::domain::workflow::{endpoint_url, workflow_id};
use forcelink::domain::{Contact, keys};
use forcelink::ports::Query;
use forcelink_stack::fixtures::ACME_CONTACTS;
use forcelink_stack::{Backend, Stack, both_backends};
use serde_json::{Map, Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_forcelink");

/// A stack with the `contacts` site connected to the simulator's `acme` org; answers it, the
/// org's id and the workflow's endpoint URL (on the stack's port, where `forcelink dev` runs).
async fn setup(backend: Backend) -> (Stack, String, String) {
    let s = Stack::start(backend, ACME_CONTACTS).await;
    s.connect("acme", "production", "admin@acme.example").await;
    let org = s.sim.org("acme").unwrap().id;
    let url = endpoint_url(&s.deps.settings.public_url, s.deps.keys.as_ref(), &workflow_id("acme", "contacts"));
    (s, org, url)
}

fn person(n: usize, name: &str) -> Map<String, Value> {
    let Value::Object(m) = json!({ "FirstName": name, "LastName": format!("P{n}"), "Email": format!("p{n}@example.com") }) else {
        unreachable!()
    };
    m
}

async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, deadline: Duration, mut f: F) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reports(deps: &Deps) -> Vec<RunReport> {
    forcelink::domain::report::list(deps.store.as_ref(), "acme").await.unwrap()
}

async fn contacts(deps: &Deps) -> Vec<Contact> {
    record::list(deps.store.as_ref(), Query::prefix(keys::directory_pk("acme"), format!("{}sf#", keys::CONTACT_PREFIX))).await.unwrap()
}

/// Distinct notification ids the simulator got an Ack for.
fn acked(sim: &sfsim::SimHandle, org: &str) -> BTreeSet<String> {
    sim.deliveries(org).unwrap().into_iter().filter(|d| d.acked).flat_map(|d| d.notification_ids).collect()
}

/// Every acked notification has exactly one finished run, one email, and nothing is pending.
async fn settle(s: &Stack, org: &str) -> usize {
    let (sim, deps) = (&s.sim, &s.deps);
    wait_until("the simulator's queue to empty", Duration::from_secs(60), async || sim.outbound_queue(org).unwrap().is_empty()).await;
    let want = acked(sim, org).len();
    wait_until("every run to finish", Duration::from_secs(60), async || {
        let r = reports(deps).await;
        r.len() == want && r.iter().all(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.outbox().len(), want, "one email per notification");
    assert_eq!(reports(deps).await.len(), want, "one run report per notification");
    want
}

async fn simulator_drives_forcelink_dev_exactly_once(backend: Backend) {
    let (s, org, url) = setup(backend).await;
    let (sim, deps) = (&s.sim, &s.deps);
    let dev = s.start_dev(Path::new(BIN), &[]);
    sim.add_outbound_rule(
        &org,
        sfsim::RuleSpec {
            name: "to forcelink".into(),
            object: "Contact".into(),
            fields: ["Email", "FirstName", "LastName", "Phone", "SystemModstamp"].map(String::from).to_vec(),
            endpoint_url: url,
            ..sfsim::RuleSpec::default()
        },
    )
    .unwrap();

    // One record, one message.
    let first = sim.insert_records(&org, "Contact", vec![person(0, "Solo")]).unwrap();
    assert_eq!(settle(&s, &org).await, 1);

    // A batch of 100 in one message.
    let batch = sim.insert_records(&org, "Contact", (1..=100).map(|n| person(n, "Batch")).collect()).unwrap();
    assert_eq!(settle(&s, &org).await, 101);
    assert!(sim.deliveries(&org).unwrap().iter().any(|d| d.acked && d.notification_ids.len() == 100));
    assert_eq!(contacts(deps).await.len(), 101);

    // Duplicates and reordering: every notification sent again, shuffled.
    let settings = sfsim::OutboundSettings { duplicate_rate: 1.0, reorder: true, batch_size: 7, ..sfsim::OutboundSettings::default() };
    sim.set_outbound_settings(&org, settings).unwrap();
    for (i, id) in batch.iter().take(30).enumerate() {
        let Value::Object(m) = json!({ "FirstName": format!("Dup{i}") }) else { unreachable!() };
        sim.update_record(&org, "Contact", id, m).unwrap();
    }
    wait_until("duplicates to be sent", Duration::from_secs(30), async || sim.deliveries(&org).unwrap().iter().any(|d| d.duplicate)).await;
    assert_eq!(settle(&s, &org).await, 131);

    // The endpoint goes down; Salesforce retries; it comes back.
    drop(dev);
    sim.set_outbound_settings(&org, sfsim::OutboundSettings::default()).unwrap();
    for (i, id) in batch.iter().skip(50).take(20).enumerate() {
        let Value::Object(m) = json!({ "FirstName": format!("Down{i}") }) else { unreachable!() };
        sim.update_record(&org, "Contact", id, m).unwrap();
    }
    wait_until("failed attempts", Duration::from_secs(30), async || {
        sim.deliveries(&org).unwrap().iter().filter(|d| !d.acked && d.error.is_some()).count() >= 1
    })
    .await;
    let _dev = s.start_dev(Path::new(BIN), &[]);
    sim.advance_clock(Duration::from_secs(3600));
    assert_eq!(settle(&s, &org).await, 151);

    // The directory holds the latest data of every record.
    let all = contacts(deps).await;
    assert_eq!(all.len(), 101);
    let by_id = |id: &str| all.iter().find(|c| forcelink::domain::ids::same_id(&c.id, id)).unwrap().clone();
    assert_eq!(by_id(&first[0]).fields["first_name"], "Solo");
    assert_eq!(by_id(&batch[0]).fields["first_name"], "Dup0");
    assert_eq!(by_id(&batch[29]).fields["first_name"], "Dup29");
    assert_eq!(by_id(&batch[55]).fields["first_name"], "Down5");
    assert_eq!(by_id(&batch[99]).fields["first_name"], "Batch");
}

/// Ack latency through `forcelink dev` over HTTP, sequential requests, fresh notifications
/// each time. `cargo test --release -p forcelink-cli --test outbound -- --ignored --nocapture ack_latency`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run it explicitly (see BENCHMARKS.md)"]
async fn ack_latency() {
    let mut next = 0usize;
    // The Ack path alone (runs held in the queue, as on AWS where another invocation runs
    // them), then with this process also running every workflow as fast as it can.
    for (label, flags) in [("runs held", &["--hold-workflows"][..]), ("runner busy", &[][..])] {
        let (s, org, url) = setup(Backend::Embedded).await;
        let _dev = s.start_dev(Path::new(BIN), flags);
        let http = reqwest::Client::new();
        for size in [1usize, 100] {
            let rounds = if size == 1 { 2000 } else { 300 };
            let mut lat = Vec::with_capacity(rounds);
            let start = Instant::now();
            for round in 0..rounds + 20 {
                let notes: String = (0..size)
                    .map(|_| {
                        next += 1;
                        let nid = forcelink::domain::ids::to_18(&format!("04l5g{next:010}")).unwrap();
                        let cid = forcelink::domain::ids::to_18(&format!("0035g{next:010}")).unwrap();
                        format!("<Notification><Id>{nid}</Id><sObject xsi:type=\"sf:Contact\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>{cid}</sf:Id><sf:Email>p{next}@example.com</sf:Email><sf:FirstName>Ana</sf:FirstName><sf:Phone xsi:nil=\"true\"/><sf:SystemModstamp>2026-03-01T10:15:00.000Z</sf:SystemModstamp></sObject></Notification>")
                    })
                    .collect();
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>{org}</OrganizationId><ActionId>04k5g000000XyZaAAB</ActionId><SessionId xsi:nil=\"true\"/>{notes}</notifications></soapenv:Body></soapenv:Envelope>"
                );
                let t = Instant::now();
                let resp = http.post(&url).header("content-type", "text/xml; charset=utf-8").body(body).send().await.unwrap();
                let status = resp.status();
                let text = resp.text().await.unwrap();
                let took = t.elapsed();
                assert!(status.is_success() && text.contains("<Ack>true</Ack>"), "{status} {text}");
                if round >= 20 {
                    lat.push(took);
                }
            }
            let wall = start.elapsed();
            lat.sort();
            let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
            println!(
                "ack latency ({label}), {size} notification(s)/message, {rounds} messages: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} notifications/s (sequential, one client)",
                pct(0.50).as_secs_f64() * 1e3,
                pct(0.99).as_secs_f64() * 1e3,
                lat[lat.len() - 1].as_secs_f64() * 1e3,
                ((rounds + 20) * size) as f64 / wall.as_secs_f64()
            );
        }
    }
}

both_backends!(simulator_drives_forcelink_dev_exactly_once);
