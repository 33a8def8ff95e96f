//! Crash safety of the export, with real processes: this binary re-executes itself as a child
//! (`--child continuous|historical`) that runs the real handler on the same embedded store and
//! queue (SQLite, on disk) against the parent's simulated org, with
//! `FORCELINK_EXPORT_CRASH=POINT@N` aborting it at each crash point in turn. A clean child
//! then finishes the work. The parent checks the simulator: exactly one record per platform
//! record, each with its latest values, nothing held, failed or dead-lettered.
//!
//! Continuous: `after_admit`, `after_upsert`, `after_settle` (the queue's visibility is 2 s
//! here, so in-flight messages come back quickly). Historical (after the org's data drifted):
//! `bulk_after_upload`, then `bulk_after_close` in the run that resumes it, then a clean run.
//!
//! Embedded only, unlike the other export suites: the crash-safety claim under test is the
//! embedded store's and queue's (SQLite on disk surviving an abort); on AWS, durability is
//! DynamoDB's and SQS's, and the children would need moto's AWS_* settings passed on too.

mod support;

use std::time::{Duration, Instant};

use export_pusher::historical::{self, Outcome, Quiet};
use export_pusher::ledger::{self, State};
use export_pusher::local::{self, Feed};
use support::{Backend, SITE, TOML, connect, quick, result_event, stack};

/// Platform records.
const N: usize = 400;
/// Messages per handler call in the children (several calls, so `@2` lands mid-stream).
const BATCH: usize = 4;
/// Visibility of a received message: how soon a crashed child's messages come back.
const VISIBILITY: Duration = Duration::from_secs(2);
/// Variables the child reads its stack from (the parent's settings).
const VARS: [&str; 8] = [
    "FORCELINK_BACKEND",
    "FORCELINK_DATA_DIR",
    "FORCELINK_PUBLIC_URL",
    "FORCELINK_EXTRA_CA_FILE",
    "FORCELINK_SF_LOGIN_URL",
    "FORCELINK_SF_CLIENT_ID",
    "FORCELINK_SF_CLIENT_SECRET",
    "FORCELINK_QUEUE_MAX_RECEIVES",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("crash: test");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    match args.iter().position(|a| a == "--child").and_then(|i| args.get(i + 1)) {
        Some(mode) => std::process::exit(runtime.block_on(child(mode))),
        None => runtime.block_on(parent()),
    }
}

/// The final score of record `i`.
fn score(i: usize) -> f64 {
    (i % 50) as f64
}

async fn child(mode: &str) -> i32 {
    let vars: Vec<(String, String)> = VARS.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect();
    let deps = support::open(&vars).await;
    let mut tuning = quick();
    tuning.bulk_job_rows = 150;
    match mode {
        "continuous" => {
            let feed = Feed::drain(BATCH, Some(VISIBILITY));
            let started = Instant::now();
            loop {
                let got = local::pump_once(&deps, &tuning, &feed).await.expect("pump");
                if got == 0 {
                    if deps.queue.depth().await.expect("depth") == 0 {
                        return 0;
                    }
                    // In flight after a crash, or retried later: wait for it to come back.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if started.elapsed() > Duration::from_secs(40) {
                    eprintln!("child: the queue did not drain");
                    return 3;
                }
            }
        }
        "historical" => match historical::run(&deps, &tuning, SITE, None, &Quiet).await.expect("historical") {
            Outcome::Done(_) => 0,
            Outcome::Paused { reason, .. } => {
                eprintln!("child: historical export paused: {reason}");
                4
            }
        },
        other => {
            eprintln!("child: unknown mode {other}");
            2
        }
    }
}

/// Runs a child; `crash` is `Some("POINT@N")` for a run that must abort there.
async fn run_child(s: &support::Stack, mode: &str, crash: Option<&str>) {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("current exe"));
    cmd.arg("--child").arg(mode).envs(s.vars().iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.env("RUST_LOG", "error");
    match crash {
        Some(plan) => cmd.env("FORCELINK_EXPORT_CRASH", plan),
        None => cmd.env_remove("FORCELINK_EXPORT_CRASH"),
    };
    let status = cmd.status().await.expect("spawn child");
    match crash {
        // Aborted by the crash hook (a signal, no exit code), not finished nor failed.
        Some(plan) => assert!(status.code().is_none(), "{mode} child with FORCELINK_EXPORT_CRASH={plan} did not crash: {status}"),
        None => assert!(status.success(), "clean {mode} child failed: {status}"),
    }
    println!("crash: {mode} child {} → {status}", crash.unwrap_or("(no crash)"));
}

/// Exactly one record per key, every one with its latest score.
fn check_records(s: &support::Stack, what: &str) {
    let by_key = support::scores_by_key(s, what);
    assert_eq!(by_key.len(), N, "{what}: records in Salesforce");
    for i in 0..N {
        assert_eq!(by_key.get(&format!("c_{i}")).copied(), Some(score(i)), "{what}: latest value of c_{i}");
    }
}

async fn check_nothing_left(s: &support::Stack, what: &str) {
    let store = s.deps.store.as_ref();
    assert_eq!(s.deps.queue.depth().await.expect("depth"), 0, "{what}: queue drained");
    assert_eq!(ledger::count(store, SITE, State::Held, 10).await.expect("held"), 0, "{what}: nothing held");
    assert_eq!(ledger::count(store, SITE, State::Failed, 10).await.expect("failed"), 0, "{what}: nothing failed");
    let dlq = s.deps.dead_letters.as_ref().expect("dlq").depth().await.expect("dlq depth");
    assert_eq!(dlq, 0, "{what}: nothing dead-lettered");
}

async fn parent() {
    let started = Instant::now();
    let s = stack(Backend::Embedded, &TOML).await;
    connect(&s, "production").await;
    // Final values at 10:00; older versions and exact duplicates too, shuffled.
    let mut events = Vec::new();
    for i in 0..N {
        events.push(result_event(&format!("c_{i}"), "2026-03-01T10:00:00Z", score(i)));
        if i % 3 == 0 {
            events.push(result_event(&format!("c_{i}"), "2026-03-01T09:00:00Z", -1.0));
        }
        if i % 7 == 0 {
            events.push(result_event(&format!("c_{i}"), "2026-03-01T10:00:00Z", score(i)));
        }
    }
    let len = events.len();
    for i in 0..len {
        events.swap(i, (i * 7919 + 13) % len);
    }
    // Bundles of 20 events, as a platform sender might batch them.
    for chunk in events.chunks(20) {
        export_pusher::replay::send_events(s.deps.queue.as_ref(), chunk).await.expect("send");
    }

    for point in ["after_admit@2", "after_upsert@2", "after_settle@2"] {
        run_child(&s, "continuous", Some(point)).await;
    }
    run_child(&s, "continuous", None).await;
    check_records(&s, "continuous");
    check_nothing_left(&s, "continuous").await;

    // The org's data drifts (someone edits every record); the historical export restores it.
    for r in s.sim.records(&s.org.id, "Learning_Result__c").expect("records") {
        let id = r.get("Id").and_then(|v| v.as_str()).expect("id").to_string();
        let mut m = serde_json::Map::new();
        m.insert("Score__c".into(), serde_json::json!(-7.0));
        s.sim.update_record(&s.org.id, "Learning_Result__c", &id, m).expect("drift");
    }
    run_child(&s, "historical", Some("bulk_after_upload@2")).await;
    run_child(&s, "historical", Some("bulk_after_close@1")).await;
    run_child(&s, "historical", None).await;
    check_records(&s, "historical");
    check_nothing_left(&s, "historical").await;
    let cp = historical::checkpoint(s.deps.store.as_ref(), SITE).await.expect("checkpoint").expect("a checkpoint");
    assert!(cp.done, "the historical run finished");
    let elapsed = started.elapsed();
    println!("crash: {N} records exact after 5 injected crashes in {elapsed:?}; calls {:?}", s.sim.calls(&s.org.id).expect("calls"));
    assert!(elapsed < Duration::from_secs(60), "the crash test took {elapsed:?}");
    println!("1 passed, 0 failed");
}
