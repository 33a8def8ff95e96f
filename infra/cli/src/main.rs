//! `forcelink`: the local stack (`dev`), the simulator (`sim`) and the admin verbs.

mod admin;
mod aws_bootstrap;
mod connections;
mod demo;
mod demo_connect;
mod demo_export;
mod demo_outbound;
mod demo_roster;
mod dev;
mod dev_sim;
mod export;
mod keys;
mod links;
mod runs;
mod sync;
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
    /// Run every function on one local port, on the embedded backends (or AWS with FORCELINK_BACKEND=aws).
    Dev(dev::DevArgs),
    /// On an AWS emulator (AWS_ENDPOINT_URL): create template.yaml's table, queues and key; print `export` lines.
    AwsBootstrap(aws_bootstrap::BootstrapArgs),
    /// Run the Salesforce simulator alone on loopback (HTTPS with its own CA, and HTTP).
    Sim(sfsim::SimArgs),
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
    /// Run every flow end to end on a fresh stack (embedded, or freshly bootstrapped AWS); non-zero exit on any failure.
    Demo(demo::DemoArgs),
    /// Make a signed link for a directory user; prints its URL.
    Link(links::LinkArgs),
    /// Email the site's Salesforce admin a one-question test invitation; report the click.
    Verify(links::VerifyArgs),
    /// Sync jobs: `sync run SITE [JOB] [--dry-run] [--force] [--full] [--json]`, `status SITE [JOB]`, `reset SITE JOB`.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Export platform events: `export send FILE`, `historical SITE [--since D]`, `replay SITE`, `flush SITE`.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Rotate the HMAC signing key (links, state, endpoint secrets); old keys keep verifying.
    RotateKeys,
    /// Retire an old HMAC signing key: what it signed stops verifying; it can never be current again.
    RetireKey {
        /// The key id (as `rotate-keys` printed it).
        kid: String,
    },
    /// Print the URL that starts authorizing a site's Salesforce connection (valid 24 h).
    Connect {
        site: String,
        /// The connection (default: the site's default connection).
        #[arg(long)]
        connection: Option<String>,
    },
    /// Email a sync user an invitation to authorize a Salesforce connection.
    Invite {
        site: String,
        /// Whom to invite (default: the connection's `sync_user` from the site file).
        #[arg(long)]
        email: Option<String>,
        /// The connection (default: the site's default connection).
        #[arg(long)]
        connection: Option<String>,
    },
    /// Rename, remove (revoking tokens) or make default a site's Salesforce connection.
    #[command(subcommand)]
    Connection(connections::ConnectionCommand),
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
        Command::AwsBootstrap(args) => aws_bootstrap::run(args, &cli.target.local_dir()).await,
        Command::Dev(args) => dev::run(settings, &cli.target.local_dir(), args).await,
        Command::Sim(args) => {
            sfsim::run_cli(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { file } => admin::apply(settings, &file).await,
        Command::Status { site, json } => admin::status(settings, site.as_deref(), json).await,
        Command::RotateKeys => admin::rotate_keys(settings).await,
        Command::RetireKey { kid } => keys::retire_key(settings, &kid).await,
        Command::Connect { site, connection } => connections::connect(settings, &site, connection.as_deref()).await,
        Command::Invite { site, email, connection } => connections::invite(settings, &site, email.as_deref(), connection.as_deref()).await,
        Command::Connection(command) => connections::run(settings, command).await,
        Command::Demo(args) => demo::run(settings, args).await,
        Command::Link(args) => links::link(settings, args).await,
        Command::Verify(args) => links::verify(settings, args).await,
        Command::Runs(args) => runs::run(settings, args).await,
        Command::Sync(cmd) => sync::run(settings, cmd).await,
        Command::Export(cmd) => export::run(settings, cli.target.queue_url.clone(), cmd).await,
    }
}
