//! `forcelink sync run SITE [JOB] [--dry-run] [--force] [--full] [--json]`: runs a site's sync
//! jobs now, with a progress bar; a dry run prints the diff and changes nothing.
//! `sync status SITE [JOB] [--json]` shows each job's watermark, next due time, interrupted run
//! and last result; `sync reset SITE JOB` starts a job over.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use forcelink::domain::keys;
use forcelink::domain::record;
use forcelink::domain::report::RunStatus;
use forcelink::domain::sync::SyncJob;
use forcelink::ports::Query;
use forcelink::{Deps, Settings};
use indicatif::{ProgressBar, ProgressStyle};
use roster_sync::{ProgressEvent, RunOptions};

/// `forcelink sync …`.
#[derive(Subcommand, Debug, Clone)]
pub enum SyncCommand {
    /// Run a site's sync jobs now (all enabled ones, or JOB).
    Run(RunArgs),
    /// Show a site's sync jobs: watermark, next due, interrupted run, last result.
    Status {
        site: String,
        /// Only this job.
        job: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start a job over: forget its watermark, schedule and interrupted run (the next run is full).
    Reset { site: String, job: String },
}

/// Options of `forcelink sync run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    pub site: String,
    /// Only this job (it runs even if disabled).
    pub job: Option<String>,
    /// Print what would change (added, updated, deactivated, groups); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run past the deactivation breaker.
    #[arg(long)]
    pub force: bool,
    /// A full pass even if an incremental one would do.
    #[arg(long)]
    pub full: bool,
    /// Lines of the diff to print per kind of change.
    #[arg(long, default_value_t = 50)]
    pub show: usize,
    /// Print each job's report (and with `--dry-run` its diff) as JSON, one document per line; no progress bar.
    #[arg(long)]
    pub json: bool,
}

/// Runs `forcelink sync …`.
pub async fn run(settings: Settings, cmd: SyncCommand) -> anyhow::Result<ExitCode> {
    let deps = Deps::from_settings(settings).await?;
    match cmd {
        SyncCommand::Run(args) => run_jobs(&deps, &args).await,
        SyncCommand::Status { site, job, json } => status(&deps, &site, job.as_deref(), json).await,
        SyncCommand::Reset { site, job } => {
            roster_sync::inspect::reset(&deps, &site, &job).await.map_err(|e| anyhow::anyhow!(e.explained()))?;
            println!("{site}/{job} reset: its next run is a full one, due now");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `forcelink sync status SITE [JOB]`.
async fn status(deps: &Deps, site: &str, job: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let jobs = roster_sync::inspect::status(deps, site, job).await.map_err(|e| anyhow::anyhow!(e.explained()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        println!("site {site:?} has no sync jobs");
    }
    for j in &jobs {
        let st = &j.state;
        let enabled = if j.job.enabled { "" } else { " [disabled]" };
        println!("{site}/{} ({}){enabled}", j.job.name, j.job.kind.describe());
        let next = st.next_due.map_or("not scheduled (one-time job that has run)".to_string(), |t| t.to_string());
        println!("  next due    {next}");
        match &st.watermark {
            Some(w) => println!("  watermark   {} · {}", w.stamp, w.id),
            None => println!("  watermark   none: the next run is a full one"),
        }
        if let Some(at) = st.last_full_at {
            println!("  last full   {at}");
        }
        if let Some(c) = &j.checkpoint {
            let at = c.cursor.as_ref().map_or("the start".to_string(), |w| format!("{} · {}", w.stamp, w.id));
            println!(
                "  checkpoint  run {} ({}), {} invocation(s), at {at}: {}",
                c.run_id,
                if c.full { "full" } else { "incremental" },
                c.invocations,
                c.counts
            );
        }
        match &j.last_run {
            Some(r) => {
                println!("  last run    {} {:?} at {}: {}", r.id, r.status, r.started_at, r.counts);
                if let Some(e) = &r.error {
                    println!("              {e}");
                }
            }
            None => println!("  last run    none"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `forcelink sync run SITE [JOB]`.
async fn run_jobs(deps: &Deps, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let jobs: Vec<SyncJob> = match &args.job {
        Some(name) => vec![roster_sync::runner::find_job(deps, &args.site, name).await?],
        None => {
            let all: Vec<SyncJob> = record::list(deps.store.as_ref(), Query::prefix(keys::site_pk(&args.site), keys::SYNC_PREFIX)).await?;
            all.into_iter().filter(|j| j.enabled).collect()
        }
    };
    anyhow::ensure!(!jobs.is_empty(), "site {:?} has no enabled sync jobs", args.site);
    let mut ok = true;
    for job in &jobs {
        ok &= run_one(deps, job, args).await;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn run_one(deps: &Deps, job: &SyncJob, args: &RunArgs) -> bool {
    let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {msg} [{bar:30}] {pos}/{len} ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", job.site, job.name));
    let b = bar.clone();
    let progress: roster_sync::runner::Progress = Arc::new(move |e| match e {
        ProgressEvent::Phase(p) => b.set_message(p),
        ProgressEvent::Total(n) => b.set_length(n),
        ProgressEvent::Done(n) => b.set_position(n),
    });
    let opts = RunOptions { dry_run: args.dry_run, force: args.force, full: args.full, progress: Some(progress), ..RunOptions::default() };
    let result = roster_sync::run_job(deps, job, &opts).await;
    bar.finish_and_clear();
    match result {
        Ok(outcome) if args.json => {
            let diff = args.dry_run.then_some(&outcome.diff);
            let doc =
                serde_json::json!({ "site": job.site, "job": job.name, "dry_run": args.dry_run, "report": outcome.report, "diff": diff });
            println!("{doc}");
            outcome.report.status != RunStatus::Failed
        }
        Ok(outcome) => {
            let r = &outcome.report;
            let what = if args.dry_run { "dry run (nothing written)" } else { "run" };
            println!("{}/{}: {what} {:?} ({})", job.site, job.name, r.status, r.id);
            println!("  {}", r.counts);
            for t in &r.tasks {
                println!("  {}: {}", t.name, t.output.as_deref().or(t.error.as_deref()).unwrap_or_default());
            }
            if args.dry_run {
                print!("{}", outcome.diff.render(args.show));
            }
            r.status != RunStatus::Failed
        }
        Err(e) => {
            eprintln!("forcelink: sync {}/{}: {}", job.site, job.name, e.explained());
            false
        }
    }
}
