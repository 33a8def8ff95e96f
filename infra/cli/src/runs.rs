//! `forcelink runs SITE`: run reports (workflow runs, exports, syncs), newest first, with
//! filters, as text or JSON.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use forcelink::domain::report::{RunReport, RunStatus};
use forcelink::{Deps, Settings};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// Options of `forcelink runs`.
#[derive(Args, Debug, Clone)]
pub struct RunsArgs {
    /// The site.
    pub site: String,
    /// Only failed runs (same as --status failed).
    #[arg(long)]
    pub failed: bool,
    /// Only runs with this status: running, succeeded, partial, failed, skipped, unknown.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<RunStatus>,
    /// Only runs started on or after this date (YYYY-MM-DD) or instant (RFC 3339).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<OffsetDateTime>,
    /// At most this many runs (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON (one array) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_status(s: &str) -> Result<RunStatus, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("{s:?}: expected running, succeeded, partial, failed, skipped or unknown"))
}

fn parse_since(s: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("{s:?}: expected a date like 2026-03-01 or an RFC 3339 instant"))
}

/// `forcelink runs SITE …`.
pub async fn run(settings: Settings, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let deps = Deps::from_settings(settings).await?;
    let want = if args.failed { Some(RunStatus::Failed) } else { args.status };
    let mut reports: Vec<RunReport> = forcelink::domain::report::list(deps.store.as_ref(), &args.site).await?;
    reports.retain(|r| want.is_none_or(|s| r.status == s) && args.since.is_none_or(|t| r.started_at >= t));
    reports.truncate(args.limit);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else if reports.is_empty() {
        println!("no runs for site {} match", args.site);
    } else {
        for r in &reports {
            print!("{}", render(r));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One report as text.
pub fn render(r: &RunReport) -> String {
    let mut t = String::new();
    let label = |v: &dyn erased::Label| v.label();
    let started = r.started_at.format(&Rfc3339).unwrap_or_default();
    let _ = writeln!(t, "{started}  {:<9}  {} {}  ({})", label(&r.status), label(&r.kind), r.name, r.id);
    for (k, v) in r.counts.iter() {
        let _ = write!(t, "    {k}={v}");
    }
    if !r.counts.is_empty() {
        t.push('\n');
    }
    for task in &r.tasks {
        let detail = task.error.as_deref().or(task.output.as_deref()).unwrap_or("");
        let _ = writeln!(t, "    {:<9}  {}: {detail}", label(&task.status), task.name);
    }
    if let Some(e) = &r.error {
        let _ = writeln!(t, "    error: {e}");
    }
    t
}

mod erased {
    /// The serde name of a unit enum value (`failed`, `workflow`).
    pub trait Label {
        fn label(&self) -> String;
    }
    impl<T: serde::Serialize> Label for T {
        fn label(&self) -> String {
            serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
        }
    }
}
