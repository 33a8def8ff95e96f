//! `forcelink export …`: send events to the export queue (embedded, or SQS with
//! `--queue-url`), run a historical export with a progress bar, replay failed events and
//! release held ones.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use export_pusher::historical::{self, Outcome, Progress};
use forcelink::domain::Counter;
use forcelink::ports::Queue;
use forcelink::{Deps, Settings};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `forcelink export` verbs.
#[derive(Subcommand, Debug, Clone)]
pub enum ExportCommand {
    /// Send events (JSON lines, or one JSON array) to the export queue.
    Send {
        /// The file (`-` for standard input).
        file: PathBuf,
    },
    /// Replay every event recorded for a site through Bulk API 2.0 (resumes an interrupted run).
    Historical {
        site: String,
        /// Only events that occurred on or after this date (`2026-03-01` or RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
    /// Re-send a site's failed events once the mapping or the org is fixed.
    Replay { site: String },
    /// Release a site's held events now (they also flow with the next export batch).
    Flush { site: String },
}

/// Runs a verb; `queue_url` sends to that SQS queue instead of the configured one.
pub async fn run(settings: Settings, queue_url: Option<String>, command: ExportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ExportCommand::Send { file } => {
            let (events, bad) = read_events(&file)?;
            for (line, reason) in &bad {
                eprintln!("forcelink: {}:{line}: {reason}", file.display());
            }
            let queue: Arc<dyn Queue> = match queue_url.filter(|_| settings.data_dir().is_some()) {
                Some(url) => {
                    let config = forcelink::backends::aws::aws_config(None).await;
                    Arc::new(forcelink::backends::sqs::SqsQueue::new(aws_sdk_sqs::Client::new(&config), url))
                }
                None => Deps::from_settings(settings).await?.queue,
            };
            let messages = export_pusher::replay::send_events(queue.as_ref(), &events).await?;
            println!("sent {} event(s) in {messages} message(s); {} refused", events.len(), bad.len());
            Ok(if bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ExportCommand::Historical { site, since } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let deps = Deps::from_settings(settings).await?;
            let bar = Bar(indicatif::ProgressBar::new(0));
            bar.0.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let outcome = historical::run(&deps, &export_pusher::Tuning::from_env(), &site, since, &bar).await?;
            bar.0.finish_and_clear();
            match outcome {
                Outcome::Done(report) => {
                    let c = |k: Counter| report.counts.count(k);
                    println!(
                        "historical export of {site}: {} created, {} updated, {} failed ({} API calls)",
                        c(Counter::Created),
                        c(Counter::Updated),
                        c(Counter::Failed),
                        c(Counter::ApiCalls)
                    );
                    for t in &report.tasks {
                        println!("  failed {}: {}", t.name, t.error.as_deref().unwrap_or(""));
                    }
                    Ok(if c(Counter::Failed) == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
                }
                Outcome::Paused { reason, checkpoint } => {
                    println!("paused at {} of {} rows: {reason}", checkpoint.rows_done, checkpoint.rows_total);
                    println!("run `forcelink export historical {site}` again to resume");
                    Ok(ExitCode::from(3))
                }
            }
        }
        ExportCommand::Replay { site } => {
            let deps = Deps::from_settings(settings).await?;
            let n = export_pusher::replay::replay_failed(&deps, &site).await?;
            println!("re-sent {n} failed event(s) of {site} to the export queue");
            Ok(ExitCode::SUCCESS)
        }
        ExportCommand::Flush { site } => {
            let deps = Deps::from_settings(settings).await?;
            let n = export_pusher::replay::flush_held(&deps, &site).await?;
            println!("released {n} held event(s) of {site} to the export queue");
            Ok(ExitCode::SUCCESS)
        }
    }
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn total(&self, rows: u64) {
        self.0.set_length(rows);
    }
    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }
    fn note(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
}

fn parse_since(text: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let d = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("--since {text:?}: expected YYYY-MM-DD or RFC 3339"))?;
    Ok(d.midnight().assume_utc())
}

/// A refused line: its number and why.
type Refused = (usize, String);

/// Reads JSON lines or one JSON array; returns the valid events and (line, reason) of the others.
fn read_events(path: &Path) -> anyhow::Result<(Vec<serde_json::Value>, Vec<Refused>)> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        for line in std::io::stdin().lock().lines() {
            s.push_str(&line?);
            s.push('\n');
        }
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut check = |line: usize, v: serde_json::Value| match export_pusher::event::parse_event(v) {
        Ok(e) => ok.push(e.raw),
        Err(inv) => bad.push((line, inv.raw.as_str().filter(|r| r.starts_with("not JSON")).map_or(inv.reason, str::to_string))),
    };
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(&text).with_context(|| format!("{}: not a JSON array", path.display()))?;
        for v in values {
            check(1, v);
        }
    } else {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v = serde_json::from_str(line).unwrap_or_else(|e| serde_json::Value::String(format!("not JSON: {e}")));
            check(i + 1, v);
        }
    }
    Ok((ok, bad))
}
