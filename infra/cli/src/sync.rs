//! `forcelink sync run SITE [JOB] [--dry-run] [--force] [--full]`: runs a site's sync jobs
//! now, with a progress bar; a dry run prints the diff and changes nothing.

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
}

/// Runs `forcelink sync …`.
pub async fn run(settings: Settings, cmd: SyncCommand) -> anyhow::Result<ExitCode> {
    let SyncCommand::Run(args) = cmd;
    let deps = Deps::from_settings(settings).await?;
    let jobs: Vec<SyncJob> = match &args.job {
        Some(name) => vec![roster_sync::runner::find_job(&deps, &args.site, name).await?],
        None => {
            let all: Vec<SyncJob> = record::list(deps.store.as_ref(), Query::prefix(keys::site_pk(&args.site), keys::SYNC_PREFIX)).await?;
            all.into_iter().filter(|j| j.enabled).collect()
        }
    };
    anyhow::ensure!(!jobs.is_empty(), "site {:?} has no enabled sync jobs", args.site);
    let mut ok = true;
    for job in &jobs {
        ok &= run_one(&deps, job, &args).await;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn run_one(deps: &Deps, job: &SyncJob, args: &RunArgs) -> bool {
    let bar = ProgressBar::new_spinner();
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
