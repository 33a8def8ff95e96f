//! `forcelink`: the local stack (`dev`), the simulator (`sim`) and the admin verbs.

mod admin;
mod dev;
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
    }
}
