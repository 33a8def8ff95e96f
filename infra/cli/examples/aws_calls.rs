//! AWS calls and sequential round trips per unit of work, on an AWS emulator (moto) with the
//! Salesforce simulator: each unit runs on `Deps` built from `FORCELINK_BACKEND=aws` settings,
//! once as they are and once with `FORCELINK_AWS_ADDED_LATENCY_MS`; the call meter counts the
//! calls, and the extra wall time divided by the added latency is the sequential round trips.
//! Prints a Markdown table. Run through `infra/bench/aws_calls.sh` (starts moto, sets the
//! `AWS_*` variables this reads).
//!
//! Each unit is a warm invocation's work as on Lambda: the SQS event source mapping's receives
//! and deletes are not the function's calls, so batches are received before the measurement.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use forcelink::backends::aws::Aws;
use forcelink::backends::dynamo::create_table;
use forcelink::backends::meter::{CallMeter, Calls};
use forcelink::domain::Counter;
use forcelink::domain::directory::DirectoryUser;
use forcelink::domain::record;
use forcelink::domain::workflow::{endpoint_secret, workflow_id};
use forcelink::links::{self, LinkClaims};
use forcelink::ports::{Cond, Message, Receive};
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::{Deps, Settings, config, queue_feed};
use serde_json::{Value, json};

const CLIENT_ID: &str = sfsim::DEFAULT_CLIENT_ID;
const CLIENT_SECRET: &str = sfsim::DEFAULT_CLIENT_SECRET;
const ADMIN: &str = "admin@acme.example";
const SITE: &str = "bench";
/// The added latency per AWS call (`AWS_CALLS_LATENCY_MS`, default 20).
const DEFAULT_LATENCY_MS: u64 = 20;
/// Events in an export batch (the event source's `BatchSize`).
const EXPORT_BATCH: usize = export_pusher::local::BATCH_SIZE;
/// Users in the roster org.
const ROSTER_USERS: usize = 1_000;

/// One measured unit: its calls and wall time, over `per` units of work.
struct Sample {
    calls: Calls,
    wall: Duration,
    per: usize,
}

/// The benchmark's world: the simulator, the site on it, and two sets of dependencies on the
/// same emulated AWS resources (without and with the added latency).
struct Bench {
    sim: sfsim::SimHandle,
    org: String,
    plain: Deps,
    slow: Deps,
    latency: Duration,
    serial: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    ensure!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run infra/bench/aws_calls.sh (this benchmark runs on an emulator only)"
    );
    let latency =
        Duration::from_millis(std::env::var("AWS_CALLS_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_LATENCY_MS));
    let reps: usize = std::env::var("AWS_CALLS_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let mut b = Bench::new(latency).await?;
    let mut rows = Vec::new();
    rows.push(("Ack of 1 notification (outbound-webhook)", "message", b.measure(reps, |b, d| Box::pin(b.ack(d, 1))).await?));
    rows.push(("Ack of 100 notifications (outbound-webhook)", "message", b.measure(reps, |b, d| Box::pin(b.ack(d, 100))).await?));
    rows.push(("link click (link-redirect)", "click", b.measure(reps, |b, d| Box::pin(b.click(d))).await?));
    rows.push((
        "workflow run, upsert contact + invitation (outbound-webhook runner)",
        "notification",
        b.measure(reps, |b, d| Box::pin(b.workflow(d))).await?,
    ));
    rows.push(("export batch of 200 events (export-pusher)", "event", b.measure(reps, |b, d| Box::pin(b.export(d))).await?));
    rows.push(("OAuth refresh (shared session)", "refresh", b.measure(reps, |b, d| Box::pin(b.refresh(d))).await?));
    rows.push(("roster full sync, first import (roster-sync)", "1,000 users", b.roster().await?));
    print_table(latency, reps, &rows);
    Ok(())
}

type UnitFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Sample>> + 'a>>;

impl Bench {
    async fn new(latency: Duration) -> anyhow::Result<Self> {
        let sim = sfsim::Sim::start(sfsim::SimConfig::default()).await.context("cannot start the simulator")?;
        let org = sim.org("acme")?.id;
        let aws = Aws::from_env(CallMeter::default(), None).await;
        let unique = format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
        let table = format!("forcelink-bench-{unique}");
        create_table(&aws.dynamodb(), &table).await?;
        let sqs = aws.sqs();
        let export_url = sqs.create_queue().queue_name(format!("bench-export-{unique}")).send().await?.queue_url.context("queue url")?;
        let workflow_url =
            sqs.create_queue().queue_name(format!("bench-workflow-{unique}")).send().await?.queue_url.context("queue url")?;
        let key = aws.kms().create_key().description("forcelink bench").send().await?;
        let key_id = key.key_metadata.map(|m| m.key_id).context("key id")?;
        let sender = format!("learning-{unique}@bench.example");
        aws.sesv2().create_email_identity().email_identity(&sender).send().await?;
        let vars: BTreeMap<&str, String> = BTreeMap::from([
            ("FORCELINK_BACKEND", "aws".to_string()),
            ("FORCELINK_TABLE", table),
            ("FORCELINK_QUEUE_URL", export_url),
            ("FORCELINK_WORKFLOW_QUEUE_URL", workflow_url),
            ("FORCELINK_KMS_KEY_ID", key_id),
            ("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string()),
            ("FORCELINK_SF_CLIENT_ID", CLIENT_ID.into()),
            ("FORCELINK_SF_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("FORCELINK_SF_LOGIN_URL", sim.https_url()),
        ]);
        let deps = async |added: Option<Duration>| {
            let mut vars = vars.clone();
            if let Some(l) = added {
                vars.insert("FORCELINK_AWS_ADDED_LATENCY_MS", l.as_millis().to_string());
            }
            Deps::from_settings(Settings::from_lookup(|k| vars.get(k).cloned())?).await
        };
        let b = Self { plain: deps(None).await?, slow: deps(Some(latency)).await?, sim, org, latency, serial: 0 };
        b.setup(&sender).await?;
        Ok(b)
    }

    /// The site: a connected connection with a refresh token, the example contact workflow,
    /// an export mapping, a directory user for links; two roster sites on a generated org.
    async fn setup(&self, sender: &str) -> anyhow::Result<()> {
        let d = &self.plain;
        let roster_site = |id: &str| {
            format!(
                r#"
[[sites]]
id = "{id}"
name = "Roster bench"
platform_url = "https://bench.platform.example"
default_connection = "production"

[[sites.connections]]
name = "production"

[[sites.sync]]
name = "roster"
type = "roster"
every_minutes = 15
"#
            )
        };
        let toml = format!(
            r#"[[sites]]
id = "{SITE}"
name = "Bench"
platform_url = "https://bench.platform.example"
default_connection = "production"
sender = {{ from = "Bench Learning <{sender}>" }}

[[sites.connections]]
name = "production"

[[sites.workflows]]
name = "contact-invite"
object = "Contact"
conditions = [{{ field = "Survey_Opt_In__c", op = "equals", value = "true" }}]
tasks = [
  {{ type = "upsert_contact", list = "salesforce-contacts", fields = {{ email = "{{Email}}", first_name = "{{FirstName}}", last_name = "{{LastName}}" }} }},
  {{ type = "send_invitation", to = "{{Email}}", subject = "A quick question, {{FirstName}}", body = "Hi {{FirstName}}: {{link}}", target = "/surveys/onboarding" }},
]

[[sites.exports]]
kind = "result"
object = "Learning_Result__c"
external_id_field = "External_Id__c"
fields = {{ Score__c = "{{score}}", Course__c = "{{course}}", Completed_At__c = {{ from = "completed_at", format = "datetime" }} }}
{}{}"#,
            roster_site("bench-roster-plain"),
            roster_site("bench-roster-slow")
        );
        config::apply_text(d.store.as_ref(), d.keys.as_ref(), "bench.toml", &toml).await?;
        let answer = sfsim::oauth::knobs::issue_refresh_token(&self.sim, ADMIN, CLIENT_ID)?;
        let text = |k: &str| answer[k].as_str().map(str::to_string).with_context(|| format!("no {k} in the token answer"));
        let bundle = TokenBundle { access_token: text("access_token")?, refresh_token: Some(text("refresh_token")?) };
        let instance = text("instance_url")?;
        let sealed = session::seal_tokens(d.keys.as_ref(), SITE, "production", &bundle).await?;
        session::update_connection(d, SITE, "production", |c| {
            c.status = forcelink::domain::ConnectionStatus::Connected;
            c.org_id = Some(self.org.clone());
            c.instance_url = Some(instance.clone());
            c.tokens_sealed = Some(sealed.clone());
        })
        .await?;
        let user = DirectoryUser {
            site: SITE.into(),
            id: "sam".into(),
            email: "sam@bench.example".into(),
            first_name: "Sam".into(),
            last_name: String::new(),
            salesforce_id: None,
            salesforce_org_id: None,
            active: true,
            tags: BTreeMap::from([("salesforce_user".to_string(), "false".to_string())]),
            manager_id: None,
            ui: None,
        };
        record::save(d.store.as_ref(), &user, Cond::Always).await?;
        let spec = sfsim::GenSpec { count: ROSTER_USERS, qstream_share: 1.0, inactive_share: 0.0, ..sfsim::GenSpec::default() };
        self.sim.generate_users("acme", spec)?;
        let token = self.sim.issue_token(ADMIN)?;
        for site in ["bench-roster-plain", "bench-roster-slow"] {
            let tokens = TokenBundle { access_token: token.clone(), refresh_token: None };
            forcelink::salesforce::session::connect_with_tokens(d, site, "production", &self.org, &self.sim.https_url(), &tokens).await?;
        }
        Ok(())
    }

    /// Runs `unit` once on each `Deps` to warm up, then `reps` times on each; the median wall
    /// times' difference over the added latency is the round trips.
    async fn measure(
        &mut self,
        reps: usize,
        unit: for<'a> fn(&'a mut Bench, bool) -> UnitFuture<'a>,
    ) -> anyhow::Result<(Calls, f64, usize)> {
        unit(self, false).await?;
        unit(self, true).await?;
        let (mut plain, mut slow) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            plain.push(unit(self, false).await?);
            slow.push(unit(self, true).await?);
        }
        Ok(summarize(plain, slow, self.latency))
    }

    fn deps(&self, slow: bool) -> &Deps {
        if slow { &self.slow } else { &self.plain }
    }

    fn next(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// Times `work` on the chosen deps and counts its AWS calls.
    async fn timed<T>(deps: &Deps, per: usize, work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<Sample> {
        let before = deps.aws_calls.snapshot();
        let started = Instant::now();
        work.await?;
        let sample = Sample { wall: started.elapsed(), calls: deps.aws_calls.snapshot().since(&before), per };
        eprintln!("  {:>4} calls in {:>8.1?}: {}", sample.calls.total(), sample.wall, sample.calls);
        Ok(sample)
    }

    /// A SOAP outbound message of `n` fresh Contact notifications.
    fn soap(&mut self, n: usize) -> anyhow::Result<String> {
        let mut notes = Vec::new();
        for _ in 0..n {
            let i = self.next();
            let id = |prefix: &str| forcelink::domain::ids::to_18(&format!("{prefix}{i:010}")).context("an id");
            let fields = vec![
                ("Id".to_string(), json!(id("0035g")?)),
                ("Email".to_string(), json!(format!("p{i}@example.com"))),
                ("FirstName".to_string(), json!(format!("P{i}"))),
                ("LastName".to_string(), json!("Bench")),
                ("Survey_Opt_In__c".to_string(), json!(true)),
                ("SystemModstamp".to_string(), json!("2026-03-01T10:00:00.000Z")),
            ];
            notes.push((id("04l5g")?, fields));
        }
        let bodies: Vec<sfsim::outbound::NoteBody<'_>> =
            notes.iter().map(|(id, fields)| sfsim::outbound::NoteBody { id, fields: fields.clone() }).collect();
        Ok(sfsim::outbound::soap_message(&self.org, "04k5g000000XyZaAAB", None, &self.sim.https_url(), "Contact", &bodies))
    }

    async fn post_ack(deps: &Deps, body: String) -> anyhow::Result<()> {
        let id = workflow_id(SITE, "contact-invite");
        let uri = format!("/outbound/{id}/{}", endpoint_secret(deps.keys.as_ref(), &id));
        let req = http::Request::post(uri).header("content-type", "text/xml; charset=utf-8").body(Bytes::from(body))?;
        let resp = outbound_webhook::handle(deps, req).await;
        ensure!(resp.status() == http::StatusCode::OK, "the Ack answered {}: {}", resp.status(), String::from_utf8_lossy(resp.body()));
        Ok(())
    }

    /// The Ack of an outbound message of `n` notifications; its workflow runs are left queued
    /// (drained, unmeasured, so the queue does not grow).
    async fn ack(&mut self, slow: bool, n: usize) -> anyhow::Result<Sample> {
        let body = self.soap(n)?;
        let deps = self.deps(slow);
        let sample = Self::timed(deps, 1, Self::post_ack(deps, body)).await?;
        self.receive_runs(n).await?;
        Ok(sample)
    }

    /// Receives the queued workflow runs of `notifications` notifications.
    async fn receive_runs(&self, notifications: usize) -> anyhow::Result<Vec<Message>> {
        let queue = self.plain.workflow_queue.clone().context("no workflow queue")?;
        let mut batch = Vec::new();
        let started = Instant::now();
        while count_notifications(&batch) < notifications {
            ensure!(started.elapsed() < Duration::from_secs(30), "the workflow runs did not arrive");
            batch.extend(queue.receive(Receive { max: 10, visibility: Some(Duration::from_secs(300)), wait: Duration::ZERO }).await?);
        }
        for m in &batch {
            queue.delete(&m.receipt_handle).await?;
        }
        Ok(batch)
    }

    /// One link click on a fresh single-use link.
    async fn click(&mut self, slow: bool) -> anyhow::Result<Sample> {
        let deps = self.deps(slow);
        let now = deps.clock.epoch_secs();
        let claims = LinkClaims::new(SITE, "sam", "/surveys/bench", now + 86_400, true);
        let token = links::mint_issued(deps.keys.as_ref(), &claims, now);
        let req = http::Request::get(format!("/l/{token}")).body(Bytes::new())?;
        Self::timed(deps, 1, async {
            let resp = link_redirect::handle(deps, req).await;
            ensure!(resp.status() == http::StatusCode::FOUND, "the click answered {}", resp.status());
            Ok(())
        })
        .await
    }

    /// The workflow runs of a 10-notification message, per notification.
    async fn workflow(&mut self, slow: bool) -> anyhow::Result<Sample> {
        const N: usize = 10;
        let body = self.soap(N)?;
        Self::post_ack(&self.plain, body).await?;
        let batch = self.receive_runs(N).await?;
        let deps = self.deps(slow);
        Self::timed(deps, N, async {
            let response = outbound_webhook::runner::handle_batch(
                deps,
                queue_feed::sqs_event(&batch),
                outbound_webhook::deadline::Deadline::after(outbound_webhook::deadline::FUNCTION_TIMEOUT),
            )
            .await;
            ensure!(response.batch_item_failures.is_empty(), "{} runs failed", response.batch_item_failures.len());
            Ok(())
        })
        .await
    }

    /// One export batch of fresh events, one per SQS message, per event.
    async fn export(&mut self, slow: bool) -> anyhow::Result<Sample> {
        let events: Vec<String> = (0..EXPORT_BATCH)
            .map(|_| {
                let i = self.next();
                json!({"schema": "forcelink.event/v1", "site": SITE, "kind": "result", "id": format!("res_{i}"),
                    "occurred_at": "2026-03-01T10:00:00Z",
                    "fields": {"score": i % 100, "course": format!("course {i}"), "completed_at": "2026-03-01T10:00:00Z"}})
                .to_string()
            })
            .collect();
        let queue = self.plain.queue.clone();
        for chunk in events.chunks(forcelink::ports::queue::MAX_BATCH) {
            queue.send_batch(chunk, Duration::ZERO).await?;
        }
        let mut batch = Vec::new();
        let feed = export_pusher::local::Feed::drain(EXPORT_BATCH, Some(Duration::from_secs(300)));
        while batch.len() < EXPORT_BATCH {
            let more = export_pusher::local::receive(queue.as_ref(), &feed).await?;
            ensure!(!more.is_empty(), "the export events did not arrive");
            batch.extend(more);
        }
        let deps = self.deps(slow);
        let tuning = export_pusher::Tuning::default();
        let sample = Self::timed(deps, batch.len(), async {
            let response = export_pusher::handle_with(deps, &tuning, queue_feed::sqs_event(&batch)).await;
            ensure!(response.batch_item_failures.is_empty(), "{} events failed", response.batch_item_failures.len());
            Ok(())
        })
        .await?;
        for m in &batch {
            queue.delete(&m.receipt_handle).await?;
        }
        Ok(sample)
    }

    /// One OAuth refresh of the connection (lease, token call, rotated tokens stored).
    async fn refresh(&mut self, slow: bool) -> anyhow::Result<Sample> {
        let deps = self.deps(slow);
        Self::timed(deps, 1, async { Ok(deps.salesforce.refresh(deps, SITE, "production", None).await?) }).await
    }

    /// The first full roster sync of the generated org, once per `Deps` (each on its own site,
    /// so both import every user), per 1,000 users.
    async fn roster(&mut self) -> anyhow::Result<(Calls, f64, usize)> {
        let mut samples = Vec::new();
        for (site, slow) in [("bench-roster-plain", false), ("bench-roster-slow", true)] {
            let deps = self.deps(slow);
            let job = roster_sync::runner::find_job(deps, site, "roster").await?;
            let opts = roster_sync::RunOptions { full: true, ..roster_sync::RunOptions::default() };
            let mut users = 0;
            let mut sample = Self::timed(deps, 1, async {
                let report = roster_sync::run_job(deps, &job, &opts).await?.report;
                users = report.counts.count(Counter::Added) as usize;
                Ok(())
            })
            .await?;
            ensure!(users >= ROSTER_USERS, "the full sync added {users} users, expected {ROSTER_USERS}");
            sample.per = 1;
            samples.push(sample);
        }
        let slow = samples.pop().context("a slow sample")?;
        let plain = samples.pop().context("a plain sample")?;
        Ok(summarize(vec![plain], vec![slow], self.latency))
    }
}

/// Notifications in received workflow-queue messages (each carries a list).
fn count_notifications(batch: &[Message]) -> usize {
    batch
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(&m.body).ok())
        .map(|v| v.get("notifications").and_then(Value::as_array).map_or(0, Vec::len))
        .sum()
}

/// Calls per unit of work (from the slow runs, which make the same calls), round trips per
/// unit, and the units per sample.
fn summarize(plain: Vec<Sample>, slow: Vec<Sample>, latency: Duration) -> (Calls, f64, usize) {
    let median = |samples: &[Sample]| {
        let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
        walls.sort();
        walls[walls.len() / 2]
    };
    let per = slow[0].per;
    let added = median(&slow).as_secs_f64() - median(&plain).as_secs_f64();
    let round_trips = added / latency.as_secs_f64() / per as f64;
    (slow[0].calls.clone(), round_trips, per)
}

fn print_table(latency: Duration, reps: usize, rows: &[(&str, &str, (Calls, f64, usize))]) {
    println!("Added latency L = {} ms per AWS call; median of {reps} warm runs at L = 0 and at L.\n", latency.as_millis());
    println!("| unit of work | per | AWS calls | sequential round trips | calls by operation |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, unit, (calls, round_trips, per)) in rows {
        let per_unit = |n: u64| n as f64 / *per as f64;
        let ops: Vec<String> = calls.0.iter().map(|((service, op), n)| format!("{service} {op} {}", trim(per_unit(*n)))).collect();
        println!("| {name} | {unit} | {} | {round_trips:.1} | {} |", trim(per_unit(calls.total())), ops.join(", "));
    }
}

/// A count per unit: whole numbers as such, fractions to two places.
fn trim(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.2}") }
}
