//! `forcelink`: the local stack (`dev`), the simulator (`sim`) and the admin verbs.

mod admin;
mod demo;
mod demo_outbound;
mod dev;
mod links;
mod runs;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::target::Target;

/// forcelink: Salesforce integration for the platform.
#[derive(Parser)]
#[command(name = "forcelink", version, about)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every function on one local port, on embedded backends under the data directory.
    Dev(dev::DevArgs),
    /// Load site configuration from a TOML file; prints each workflow's endpoint URL.
    Apply {
        /// The TOML file (see infra/examples/).
        file: std::path::PathBuf,
    },
    /// Show sites, connections, workflows, exports and sync jobs.
    Status {
        /// Only this site.
        site: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List run reports of a site (workflow runs, exports, syncs), newest first.
    Runs(runs::RunsArgs),
    /// Run every flow end to end on a fresh local stack; non-zero exit on any failure.
    Demo(demo::DemoArgs),
    /// Make a signed link for a directory user; prints its URL.
    Link(links::LinkArgs),
    /// Email the site's Salesforce admin a one-question test invitation; report the click.
    Verify(links::VerifyArgs),
    /// Rotate the HMAC signing key (links, state, endpoint secrets); old keys keep verifying.
    RotateKeys,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forcelink: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("forcelink: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.target.settings()?;
    forcelink::telemetry::init(settings.json_logs);
    match cli.command {
        Command::Dev(args) => dev::run(settings, args).await,
        Command::Apply { file } => admin::apply(settings, &file).await,
        Command::Status { site, json } => admin::status(settings, site.as_deref(), json).await,
        Command::RotateKeys => admin::rotate_keys(settings).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Link(args) => links::link(settings, args).await,
        Command::Verify(args) => links::verify(settings, args).await,
        Command::Runs(args) => runs::run(settings, args).await,
    }
}
