//! `sfsim`: run the Salesforce simulator on loopback.

use clap::Parser;

#[derive(Parser)]
#[command(name = "sfsim", about = "A Salesforce org simulator (OAuth, REST, Bulk API 2.0, outbound messages)")]
struct Cli {
    #[command(flatten)]
    args: sfsim::SimArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SFSIM_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    sfsim::run_cli(Cli::parse().args).await?;
    Ok(())
}
