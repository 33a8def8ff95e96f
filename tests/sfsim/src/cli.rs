//! The `sfsim` command line ([`SimArgs`], [`run_cli`]), also embeddable by `forcelink sim`.

use crate::config::SimConfig;
use crate::error::SimError;
use crate::{Sim, SimHandle};
use std::path::PathBuf;

/// Command-line options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// HTTPS port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8443, env = "SFSIM_HTTPS_PORT")]
    pub https_port: u16,
    /// Plain HTTP port (0 = any free port).
    #[arg(long, default_value_t = 8480, env = "SFSIM_HTTP_PORT")]
    pub http_port: u16,
    /// Disable the plain HTTP listener.
    #[arg(long)]
    pub no_http: bool,
    /// Directory for ca.pem and ca-key.pem (reused across runs).
    #[arg(long, env = "SFSIM_CA_DIR", default_value = ".sfsim")]
    pub ca_dir: PathBuf,
    /// Seed file (TOML or JSON SimConfig); flags override its ports and CA dir.
    #[arg(long, env = "SFSIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Query page size.
    #[arg(long)]
    pub page_size: Option<usize>,
    /// RNG seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sim clock speed factor.
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Write the startup summary as JSON to this file (for scripts and test fixtures).
    #[arg(long)]
    pub info_file: Option<PathBuf>,
}

/// Builds the config from the arguments.
pub fn config_from(args: &SimArgs) -> Result<SimConfig, SimError> {
    let mut c = match &args.config {
        Some(p) => SimConfig::from_file(p)?,
        None => SimConfig::default(),
    };
    c.https_port = args.https_port;
    c.http_port = (!args.no_http).then_some(args.http_port);
    c.ca_dir = Some(args.ca_dir.clone());
    if let Some(p) = args.page_size {
        c.page_size = p;
    }
    if let Some(s) = args.seed {
        c.seed = s;
    }
    if let Some(t) = args.time_scale {
        c.time_scale = t;
    }
    Ok(c)
}

/// Prints URLs, the CA path, client apps and users.
pub fn summary(sim: &SimHandle) -> serde_json::Value {
    let apps: Vec<serde_json::Value> = sim.lock().apps.values().map(|a| serde_json::json!(a)).collect();
    serde_json::json!({"urls": sim.urls(), "orgs": sim.orgs(), "apps": apps})
}

/// Runs the simulator until Ctrl-C.
pub async fn run_cli(args: SimArgs) -> Result<(), SimError> {
    let sim = Sim::start(config_from(&args)?).await?;
    let info = summary(&sim);
    if let Some(f) = &args.info_file {
        std::fs::write(f, serde_json::to_vec_pretty(&info).unwrap_or_default())?;
    }
    println!("sfsim listening");
    println!("  https:   {}", sim.https_url());
    if !sim.http_url().is_empty() {
        println!("  http:    {}", sim.http_url());
    }
    println!("  CA:      {}   (REQUESTS_CA_BUNDLE / FORCELINK_EXTRA_CA_FILE)", sim.ca_pem_path().display());
    println!("  admin:   {}/_sim/info", sim.https_url());
    for a in sim.lock().apps.values() {
        println!("  app:     client_id={} client_secret={}", a.client_id, a.client_secret);
    }
    for o in sim.orgs() {
        println!("  org:     {} {} ({}) my domain {}", o.name, o.id, if o.sandbox { "sandbox" } else { "production" }, o.my_domain_url);
        for u in o.users.iter().take(10) {
            println!("    user:  {} password={} token={}", u.username, u.password, u.security_token);
        }
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
