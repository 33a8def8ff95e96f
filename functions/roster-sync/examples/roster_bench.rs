//! Roster benchmark: a full sync of N users (default 100,000) against the simulator running
//! as a separate process (so this process's peak memory is the sync's alone), an unchanged
//! re-run, and a re-run with 1% of users changed. Prints Salesforce calls, wall time, peak
//! memory (VmHWM) and directory writes.
//!
//! ```sh
//! export CARGO_TARGET_DIR=$HOME/.cache/forcelink-target
//! cargo build --release -p sfsim --bin sfsim
//! cargo run --release -p roster-sync --example roster_bench -- 100000
//! ```
//! `SFSIM_BIN` overrides the simulator binary (default `$CARGO_TARGET_DIR/release/sfsim`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forcelink::domain::record;
use forcelink::domain::{Counter, DirectoryUser, keys};
use forcelink::ports::Query;
use forcelink::salesforce::session::TokenBundle;
use forcelink::{Deps, Settings, config};
use roster_sync::RunOptions;
use serde_json::{Value, json};

/// The roster job the bench runs, on `forcelink_stack::fixtures::ACME`.
const ROSTER_JOB: &str = r#"
[[sites.sync]]
name = "roster"
type = "roster"
every_minutes = 15
tag_fields = { region = "Region__c", department = "Department", title = "Title" }
"#;

/// Resets the peak RSS (VmHWM) so the next reading is one run's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let bin = std::env::var("SFSIM_BIN").unwrap_or_else(|_| format!("{target}/release/sfsim"));
    let info_path = dir.path().join("sim.json");
    let _sim = Child(
        Command::new(&bin)
            .args(["--https-port", "0", "--http-port", "0", "--ca-dir"])
            .arg(dir.path().join("ca"))
            .arg("--info-file")
            .arg(&info_path)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e} (cargo build --release -p sfsim)"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let info: Value = loop {
        if let Some(v) = std::fs::read(&info_path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            break v;
        }
        if Instant::now() > deadline {
            return Err("the simulator did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let https = info["urls"]["https"].as_str().ok_or("no https url")?.to_string();
    let admin = info["urls"]["http"].as_str().ok_or("no http url")?.to_string();
    let ca = info["urls"]["ca_pem_path"].as_str().ok_or("no CA")?.to_string();
    let org_id = info["orgs"][0]["id"].as_str().ok_or("no org")?.to_string();
    let http = reqwest::Client::new();

    let t = Instant::now();
    let spec = json!({"count": n, "depth": 6, "roles": true, "qstream_share": 1.0, "inactive_share": 0.0,
        "custom_fields": [{"name": "Region__c", "type": "string"}], "domain": "bench.example"});
    http.post(format!("{admin}/_sim/orgs/acme/generate")).json(&spec).send().await?.error_for_status()?;
    eprintln!("simulator: {n} users generated in {:?}", t.elapsed());
    let token: Value =
        http.post(format!("{admin}/_sim/token")).json(&json!({"username": "admin@acme.example"})).send().await?.json().await?;
    let token = token["access_token"].as_str().ok_or("no token")?.to_string();

    let data = dir.path().join("data");
    let deps = Deps::from_settings(Settings::embedded(&data, Some(Path::new(&ca)), None)?).await?;
    let site = format!("{}{ROSTER_JOB}", forcelink_stack::fixtures::ACME);
    config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "bench.toml", &site).await?;
    forcelink::salesforce::session::connect_with_tokens(
        &deps,
        "acme",
        "production",
        &org_id,
        &https,
        &TokenBundle { access_token: token, refresh_token: None },
    )
    .await?;
    let job = roster_sync::runner::find_job(&deps, "acme", "roster").await?;
    http.post(format!("{admin}/_sim/orgs/acme/calls/reset")).send().await?;
    let before = peak_rss_mb();

    let mut rows = Vec::new();
    let mut run = |label: &'static str, r: &roster_sync::RunOutcome, wall: Duration, calls: Value| {
        let c = &r.report.counts;
        let get = |k: Counter| c.count(k);
        rows.push(format!(
            "| {label} | {} | {} | {:.1} s | {:.0} MB | {} | {} | {} |",
            get(Counter::ApiCalls),
            calls["query"].as_u64().unwrap_or_default() + calls["query_more"].as_u64().unwrap_or_default(),
            wall.as_secs_f64(),
            peak_rss_mb(),
            get(Counter::DirectoryWrites),
            get(Counter::Added) + get(Counter::Updated),
            get(Counter::GroupsAdded) + get(Counter::GroupsChanged),
        ));
    };
    let calls = |http: reqwest::Client, admin: String| async move {
        let v: Value = http.get(format!("{admin}/_sim/orgs/acme/calls")).send().await?.json().await?;
        http.post(format!("{admin}/_sim/orgs/acme/calls/reset")).send().await?;
        Ok::<Value, reqwest::Error>(v)
    };

    reset_peak();
    let t = Instant::now();
    let full = roster_sync::run_job(&deps, &job, &RunOptions::default()).await?;
    run("full sync", &full, t.elapsed(), calls(http.clone(), admin.clone()).await?);
    reset_peak();
    let t = Instant::now();
    let same = roster_sync::run_job(&deps, &job, &RunOptions::default()).await?;
    run("unchanged re-run (incremental)", &same, t.elapsed(), calls(http.clone(), admin.clone()).await?);
    reset_peak();
    let t = Instant::now();
    let same_full = roster_sync::run_job(&deps, &job, &RunOptions { full: true, ..RunOptions::default() }).await?;
    run("unchanged re-run (full pass)", &same_full, t.elapsed(), calls(http.clone(), admin.clone()).await?);

    let mut query = Query::prefix(keys::directory_pk("acme"), keys::USER_PREFIX).limit(1000);
    let mut i = 0;
    loop {
        let page = deps.store.as_ref().query(&query).await?;
        for item in page.items.iter().step_by(100) {
            let u: DirectoryUser = record::decode(item)?;
            let body = json!({"Region__c": format!("moved-{i}")});
            http.patch(format!("{admin}/_sim/orgs/acme/records/User/{}", u.id)).json(&body).send().await?.error_for_status()?;
            i += 1;
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    calls(http.clone(), admin.clone()).await?;
    reset_peak();
    let t = Instant::now();
    let one = roster_sync::run_job(&deps, &job, &RunOptions::default()).await?;
    run("1% changed (incremental)", &one, t.elapsed(), calls(http.clone(), admin.clone()).await?);

    println!(
        "roster sync of {n} users (6-level hierarchy, 3 tag fields), simulator in a separate process; RSS before the first run {before:.0} MB"
    );
    println!(
        "| run | Salesforce calls (counted) | query calls (simulator) | wall | peak RSS of the run | directory writes | users written | groups written |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
