//! The simulated Salesforce org `forcelink dev` starts in-process, and the demo site it seeds,
//! so a person can click through the whole OAuth flow in a browser with nothing else running.

use std::path::Path;

use anyhow::Context;
use forcelink::domain::keys;
use forcelink::ports::Query;
use forcelink::{Deps, Settings, config};

/// The shipped example site, seeded into an empty dev store.
const DEMO_SITE: &str = include_str!("../../examples/acme.toml");

/// Starts the simulator on `https_port` (its CA under `data_dir/sim`) and points the settings
/// at it: login hosts, the simulator app's client id and secret, and its CA as an extra root.
pub async fn start(settings: &mut Settings, data_dir: &Path, https_port: u16) -> anyhow::Result<sfsim::SimHandle> {
    let sim = sfsim::Sim::start(sfsim::SimConfig { https_port, ca_dir: Some(data_dir.join("sim")), ..sfsim::SimConfig::default() })
        .await
        .context("cannot start the Salesforce simulator (is the port taken? try --sim-port 0)")?;
    let base = sim.https_url().trim_end_matches('/').to_string();
    let app = sfsim::AppSpec::default();
    let sf = &mut settings.salesforce;
    sf.login_url = url::Url::parse(&format!("{base}/login.salesforce.com"))?;
    sf.sandbox_url = url::Url::parse(&format!("{base}/test.salesforce.com"))?;
    sf.client_id.get_or_insert(app.client_id);
    sf.client_secret.get_or_insert(app.client_secret);
    settings.extra_ca_file = Some(sim.ca_pem_path());
    Ok(sim)
}

/// Applies the example site when the store has no site yet; returns whether it did.
pub async fn seed_demo_site(deps: &Deps) -> anyhow::Result<bool> {
    let page = deps.store.query(&Query::prefix(keys::SITES_PK, "").on_gsi1().limit(1)).await?;
    if !page.items.is_empty() {
        return Ok(false);
    }
    config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "infra/examples/acme.toml", DEMO_SITE).await?;
    Ok(true)
}
