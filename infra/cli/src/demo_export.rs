//! The `export` flow of `forcelink demo`: platform events for a site that is not connected yet
//! are held; once it connects they flow; then 2,000 events (with older versions and
//! duplicates, each in its own SQS message) go through the handler fed as the SQS event
//! source does, against a simulated org failing 20% of calls (5xx) and locking rows, and
//! become exactly 2,000 records with the latest values. Finally the org's data drifts and a
//! historical export (Bulk API 2.0) puts every record back. Any mismatch fails the demo.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use export_pusher::historical::{self, Outcome, Quiet};
use export_pusher::ledger::{self, State};
use export_pusher::local::{self, Feed};
use forcelink::domain::Counter;
use forcelink::domain::export::flush_message;
use forcelink::ports::queue::MAX_BATCH;
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::{Deps, config};
use serde_json::{Value, json};

use crate::demo::Demo;

const SITE: &str = "demo-export";
const OBJECT: &str = "Learning_Result__c";
/// Results exported continuously on the embedded backends.
const EVENTS: usize = 2_000;
/// On AWS services: fewer, as an emulator (moto serves DynamoDB one request at a time) is
/// slower than the real services by far.
const EVENTS_ON_AWS: usize = 200;
/// Events sent before the site connects.
const HELD: usize = 50;

/// Runs the flow.
pub async fn flow(d: &Demo) -> anyhow::Result<()> {
    let sim = sfsim::Sim::start(sfsim::SimConfig { bulk_delay_ms: 300, ..sfsim::SimConfig::default() })
        .await
        .context("cannot start the simulator")?;
    let org = sim.org("acme")?;
    let deps = Deps::from_settings(d.settings("export", &[("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string())])?).await?;
    let toml = format!(
        r#"[[sites]]
id = "{SITE}"
name = "Export demo"
platform_url = "https://demo.platform.example"
default_connection = "production"

[[sites.connections]]
name = "production"

[[sites.exports]]
kind = "result"
object = "{OBJECT}"
external_id_field = "External_Id__c"
fields = {{ Score__c = "{{score}}", Course__c = "{{course}}", Completed_At__c = {{ from = "completed_at", format = "datetime" }}, Completed__c = {{ constant = true }} }}
"#
    );
    config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "demo-export.toml", &toml).await?;
    d.step(format!("site {SITE}: results → {OBJECT} upserted by External_Id__c; simulated org {}", org.id));
    let tuning = export_pusher::Tuning {
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(2),
        attempt_pause: Duration::from_millis(20),
        bulk_poll: Duration::from_millis(200),
        ..export_pusher::Tuning::default()
    };
    let feed = Feed::drain(local::BATCH_SIZE, Some(Duration::from_secs(10)));

    // 1. Not connected yet: events are held, not lost.
    let early: Vec<Value> = (0..HELD).map(|i| event(&format!("early_{i}"), "2026-03-01T08:00:00Z", i as f64)).collect();
    send_one_per_message(&deps, &early).await?;
    drain(&deps, &tuning, &feed).await?;
    let held = ledger::count(deps.store.as_ref(), SITE, State::Held, 10_000).await?;
    ensure!(held == HELD, "{held} events held, expected {HELD}");
    ensure!(sim.records(&org.id, OBJECT)?.is_empty(), "records reached Salesforce without a connection");
    d.step(format!("{HELD} events before the site connected: held in the ledger (messages deleted), nothing in Salesforce"));

    // 2. The site connects: the held events flow (the oauth-callback sends this flush on connect).
    let token = sim.issue_token("admin@acme.example")?;
    session::connect_with_tokens(
        &deps,
        SITE,
        "production",
        &org.id,
        &sim.https_url(),
        &TokenBundle { access_token: token, refresh_token: None },
    )
    .await?;
    deps.queue.send(flush_message(SITE)).await?;
    drain(&deps, &tuning, &feed).await?;
    let held = ledger::count(deps.store.as_ref(), SITE, State::Held, 10).await?;
    let got = sim.records(&org.id, OBJECT)?.len();
    ensure!(held == 0 && got == HELD, "after connecting: {held} still held, {got} records");
    d.step(format!("connected production → {}: the {HELD} held events flowed ({got} records)", org.id));

    // 3. Continuous export under faults.
    let mut events = Vec::new();
    let results = if d.on_aws() { EVENTS_ON_AWS } else { EVENTS };
    for i in 0..results {
        events.push(event(&format!("res_{i}"), "2026-03-01T10:00:00Z", score(i)));
        if i % 4 == 0 {
            events.push(event(&format!("res_{i}"), "2026-03-01T09:00:00Z", -1.0));
        }
        if i % 10 == 0 {
            events.push(event(&format!("res_{i}"), "2026-03-01T10:00:00Z", score(i)));
        }
    }
    let len = events.len();
    for i in 0..len {
        events.swap(i, (i * 7919 + 13) % len);
    }
    let faults = sfsim::Faults { error_5xx_rate: 0.2, lock_row_rate: 0.2, ..sfsim::Faults::default() };
    sim.set_faults(&org.id, faults)?;
    sim.reset_calls(&org.id)?;
    send_one_per_message(&deps, &events).await?;
    d.step(format!(
        "{} events for {results} results (older versions and duplicates among them, shuffled), one per SQS message; faults: 20% 5xx, 20% row locks",
        events.len()
    ));
    let started = Instant::now();
    let batches = drain(&deps, &tuning, &feed).await?;
    let took = started.elapsed();
    let calls = api_calls(&sim, &org.id)?;
    sim.set_faults(&org.id, sfsim::Faults::default())?;
    check(&sim, &org.id, results)?;
    d.step(format!(
        "{results} results → {results} records with the latest values, none duplicated, none lost ({batches} handler calls, {took:.1?})"
    ));
    d.step(format!("{calls} API calls with faults on ({} per 10,000 events; retries included)", calls * 10_000 / len as u64));
    let store = deps.store.as_ref();
    let failed = ledger::count(store, SITE, State::Failed, 10).await?;
    let dlq = match &deps.dead_letters {
        Some(q) => q.depth().await?,
        None => 0,
    };
    ensure!(failed == 0 && dlq == 0, "{failed} failed events, {dlq} dead letters");

    // 4. The org's data drifts; a historical export (Bulk API 2.0) restores every record.
    let mut edited = 0;
    for r in sim.records(&org.id, OBJECT)?.into_iter().take(500) {
        let Some(id) = r.get("Id").and_then(Value::as_str).map(str::to_string) else { continue };
        let mut m = serde_json::Map::new();
        m.insert("Score__c".into(), json!(-7.0));
        sim.update_record(&org.id, OBJECT, &id, m)?;
        edited += 1;
    }
    d.step(format!("{edited} records edited by hand in the org (Score__c = -7)"));
    sim.reset_calls(&org.id)?;
    let started = Instant::now();
    let outcome = historical::run(&deps, &tuning, SITE, None, &Quiet).await?;
    let Outcome::Done(report) = outcome else { anyhow::bail!("the historical export paused: {outcome:?}") };
    let took = started.elapsed();
    let calls = api_calls(&sim, &org.id)?;
    check(&sim, &org.id, results)?;
    let c = |k: Counter| report.counts.count(k);
    ensure!(c(Counter::Failed) == 0, "historical export: {} failed rows", c(Counter::Failed));
    d.step(format!(
        "historical export: {} rows through Bulk API 2.0 ({} created, {} updated) in {calls} API calls, {took:.1?}; every record back to its latest values",
        c(Counter::Created) + c(Counter::Updated),
        c(Counter::Created),
        c(Counter::Updated)
    ));
    Ok(())
}

fn score(i: usize) -> f64 {
    (i % 100) as f64
}

fn event(id: &str, at: &str, score: f64) -> Value {
    json!({"schema": "forcelink.event/v1", "site": SITE, "kind": "result", "id": id, "occurred_at": at,
        "fields": {"score": score, "course": format!("course {id}"), "completed_at": at}})
}

/// Sends each event in its own message, ten a call (as a platform sending in real time).
async fn send_one_per_message(deps: &Deps, events: &[Value]) -> anyhow::Result<()> {
    let bodies: Vec<String> = events.iter().map(Value::to_string).collect();
    for chunk in bodies.chunks(MAX_BATCH) {
        deps.queue.send_batch(chunk, Duration::ZERO).await?;
    }
    Ok(())
}

/// Feeds the handler until the queue is empty; returns the handler calls.
async fn drain(deps: &Deps, tuning: &export_pusher::Tuning, feed: &Feed) -> anyhow::Result<usize> {
    let started = Instant::now();
    let mut calls = 0;
    loop {
        if local::pump_once(deps, tuning, feed).await? > 0 {
            calls += 1;
            continue;
        }
        if deps.queue.depth().await? == 0 {
            return Ok(calls);
        }
        ensure!(started.elapsed() < Duration::from_secs(120), "the export queue did not drain in 2 minutes");
        // Retried messages come back after their delay.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls counted against the org's daily limit.
fn api_calls(sim: &sfsim::SimHandle, org: &str) -> anyhow::Result<u64> {
    Ok(sim.calls(org)?.get("api_used").copied().unwrap_or(0))
}

/// Exactly one record per result (`results` of them and the held ones), each with its latest score.
fn check(sim: &sfsim::SimHandle, org: &str, results: usize) -> anyhow::Result<()> {
    let records = sim.records(org, OBJECT)?;
    let mut by_key: HashMap<String, f64> = HashMap::new();
    for r in &records {
        let key = r.get("External_Id__c").and_then(Value::as_str).unwrap_or_default().to_string();
        let value = r.get("Score__c").and_then(Value::as_f64).unwrap_or(f64::NAN);
        ensure!(by_key.insert(key.clone(), value).is_none(), "duplicate record for {key}");
    }
    ensure!(records.len() == results + HELD, "{} records, expected {}", records.len(), results + HELD);
    for i in 0..results {
        let got = by_key.get(&format!("res_{i}")).copied();
        ensure!(got == Some(score(i)), "res_{i}: Score__c {got:?}, expected {}", score(i));
    }
    for i in 0..HELD {
        let got = by_key.get(&format!("early_{i}")).copied();
        ensure!(got == Some(i as f64), "early_{i}: Score__c {got:?}, expected {i}");
    }
    Ok(())
}
