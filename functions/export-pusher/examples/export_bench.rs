//! Export benchmarks against the simulator, in one run (`infra/bench/export.sh`):
//!
//! 1. **continuous**: N events (`FORCELINK_BENCH_EVENTS`, default 10,000), each in its own
//!    SQS message as a platform sends them in real time, through the real handler fed as the
//!    SQS event source does (batches of up to 200 messages); Salesforce API calls (the
//!    simulator's `api_used` counter) and wall time until the queue is empty;
//! 2. **historical**: the same N records replayed through Bulk API 2.0 (`historical::run`);
//! 3. **simple-salesforce** (if `FORCELINK_BENCH_PYTHON` names a Python with it): the same N
//!    records by per-record upsert and by `bulk2` upsert (`infra/bench/export_compare.py`),
//!    against the same simulator, calls counted the same way;
//! 4. **latency**: the dev stack's pieces (the embedded queue, the feeder `forcelink dev` runs
//!    with its 1 s batching window, the simulator): events sent one by one at
//!    `FORCELINK_BENCH_RATE` per second (default 20) for `FORCELINK_BENCH_SECS` (default 30);
//!    latency is the record's `CreatedDate` in the simulator minus the send time (one clock).
//!
//! Prints a Markdown table. Run with `--release`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use export_pusher::historical::{self, Outcome, Quiet};
use export_pusher::local::{self, Feed};
use forcelink::domain::Counter;
use forcelink::ports::queue::MAX_BATCH;
use support::{Backend, SITE, TOML, connect, result_event, stack_with};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    forcelink::telemetry::init(false);
    let n = env_num("FORCELINK_BENCH_EVENTS", 10_000) as usize;
    let s = stack_with(Backend::Embedded, &TOML, sfsim::SimConfig::default()).await;
    connect(&s, "production").await;
    let tuning = export_pusher::Tuning::default();
    let per_10k = |calls: u64, events: usize| calls as f64 * 10_000.0 / events as f64;
    let mut rows: Vec<String> = Vec::new();

    // 1. Continuous.
    let events: Vec<String> =
        (0..n).map(|i| result_event(&format!("bench_{i}"), "2026-03-01T10:00:00Z", (i % 100) as f64).to_string()).collect();
    for chunk in events.chunks(MAX_BATCH) {
        s.deps.queue.send_batch(chunk, Duration::ZERO).await.expect("send");
    }
    s.sim.reset_calls(&s.org.id).expect("reset");
    let started = Instant::now();
    let feed = Feed::drain(local::BATCH_SIZE, None);
    let mut invocations = 0;
    while local::pump_once(&s.deps, &tuning, &feed).await.expect("pump") > 0 {
        invocations += 1;
    }
    let took = started.elapsed();
    let calls = api_used(&s);
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 0, "queue drained");
    assert_eq!(count(&s, "bench_"), n, "every event a record");
    eprintln!("continuous: {n} events, {invocations} handler calls, {calls} API calls, {took:?}");
    rows.push(row("forcelink continuous (sObject Collections, SQS batches of 200 one-event messages)", n, calls, per_10k(calls, n), took));

    // 2. Historical.
    s.sim.reset_calls(&s.org.id).expect("reset");
    let started = Instant::now();
    let outcome = historical::run(&s.deps, &tuning, SITE, None, &Quiet).await.expect("historical");
    let took = started.elapsed();
    let Outcome::Done(report) = outcome else { panic!("historical export paused: {outcome:?}") };
    let calls = api_used(&s);
    let rows_done = report.counts.count(Counter::Created) + report.counts.count(Counter::Updated);
    assert_eq!(rows_done, n as u64, "historical rows");
    eprintln!("historical: {n} rows, {calls} API calls, {took:?}");
    rows.push(row("forcelink historical (Bulk API 2.0 upsert)", n, calls, per_10k(calls, n), took));

    // 3. simple-salesforce.
    if let Ok(python) = std::env::var("FORCELINK_BENCH_PYTHON") {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/bench/export_compare.py");
        let per_record = env_num("FORCELINK_BENCH_PY_PER_RECORD_EVENTS", n as u64);
        let out = tokio::process::Command::new(python)
            .arg(script)
            .args(["--url", &s.sim.https_url(), "--ca", &s.sim.ca_pem_path().display().to_string(), "--org", &s.org.id])
            .args(["--events", &n.to_string(), "--per-record-events", &per_record.to_string()])
            .output()
            .await
            .expect("python");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "export_compare.py failed: {}", out.status);
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("export_compare.py JSON");
        for (key, label) in [("per_record", "simple-salesforce per-record upsert"), ("bulk2", "simple-salesforce bulk2 upsert")] {
            let r = &answer[key];
            let events = r["events"].as_u64().unwrap_or(0) as usize;
            let calls = r["calls"].as_u64().unwrap_or(0);
            let took = Duration::from_secs_f64(r["seconds"].as_f64().unwrap_or(0.0));
            rows.push(row(label, events, calls, per_10k(calls, events.max(1)), took));
        }
    }

    // 4. Latency through the dev stack's feeder.
    let rate = env_num("FORCELINK_BENCH_RATE", 20).max(1);
    let secs = env_num("FORCELINK_BENCH_SECS", 30).max(1);
    let deps = std::sync::Arc::new(s.another_lambda().await);
    let feeder = {
        let deps = deps.clone();
        tokio::spawn(async move { local::run(&deps, &export_pusher::Tuning::default(), &Feed::default()).await })
    };
    let total = (rate * secs) as usize;
    let mut sent_at = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    for i in 0..total {
        tick.tick().await;
        sent_at.push(s.sim.clock.now());
        let body = result_event(&format!("lat_{i}"), "2026-03-01T11:00:00Z", 1.0).to_string();
        s.deps.queue.send(body).await.expect("send");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&s, "lat_") < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    feeder.abort();
    let mut created: Vec<Option<OffsetDateTime>> = vec![None; total];
    for r in s.sim.records(&s.org.id, "Learning_Result__c").expect("records") {
        let key = r.get("External_Id__c").and_then(|v| v.as_str()).unwrap_or_default();
        let Some(i) = key.strip_prefix("lat_").and_then(|i| i.parse::<usize>().ok()) else { continue };
        let at = r.get("CreatedDate").and_then(|v| v.as_str()).and_then(parse_sf_datetime);
        if let Some(slot) = created.get_mut(i) {
            *slot = at;
        }
    }
    let mut lat: Vec<f64> =
        created.iter().zip(&sent_at).filter_map(|(c, s)| c.map(|c| (c - *s).as_seconds_f64().max(0.0) * 1000.0)).collect();
    assert_eq!(lat.len(), total, "every latency event reached Salesforce");
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];

    println!("\n| run | events | API calls | calls / 10,000 events | wall time | events/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\nlatency, event sent → record in Salesforce, {total} events at {rate}/s one per message, feeder batch ≤ {} within {:?}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        local::BATCH_SIZE,
        Feed::default().window,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}

fn row(label: &str, events: usize, calls: u64, per_10k: f64, took: Duration) -> String {
    let rate = events as f64 / took.as_secs_f64().max(1e-9);
    format!("| {label} | {events} | {calls} | {per_10k:.0} | {:.1} s | {rate:.0} |", took.as_secs_f64())
}

/// API calls counted against the org's daily limit since the last reset.
fn api_used(s: &support::Stack) -> u64 {
    s.sim.calls(&s.org.id).expect("calls").get("api_used").copied().unwrap_or(0)
}

fn count(s: &support::Stack, prefix: &str) -> usize {
    s.sim
        .records(&s.org.id, "Learning_Result__c")
        .expect("records")
        .iter()
        .filter(|r| r.get("External_Id__c").and_then(|v| v.as_str()).is_some_and(|k| k.starts_with(prefix)))
        .count()
}

/// `2026-01-01T00:00:00.000+0000` (Salesforce's form) or RFC 3339.
fn parse_sf_datetime(text: &str) -> Option<OffsetDateTime> {
    let fixed = match text.strip_suffix("+0000") {
        Some(head) => format!("{head}Z"),
        None => text.to_string(),
    };
    OffsetDateTime::parse(&fixed, &Rfc3339).ok()
}
