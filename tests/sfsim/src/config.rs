//! Simulator configuration: ports, CA directory, seed, paging, timing, and the orgs to create.
//! Loadable from a TOML or JSON file; every field has a default.

use crate::error::SimError;
use crate::org::{AppSpec, OrgSpec, UserSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings for [`crate::Sim::start`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// HTTPS port on 127.0.0.1 (0 = any free port).
    pub https_port: u16,
    /// Plain HTTP port (0 = any free port; None = no plain listener).
    pub http_port: Option<u16>,
    /// Where to write `ca.pem` (and keep `ca-key.pem` so the CA survives restarts);
    /// None = a temporary directory removed on shutdown.
    pub ca_dir: Option<PathBuf>,
    /// RNG seed for faults, generated data and tokens.
    pub seed: u64,
    /// Records per query page (Salesforce: 2000).
    pub page_size: usize,
    /// Approve authorize requests that carry `login_hint` without showing the page.
    pub auto_approve: bool,
    /// Sim clock speed (1.0 = real time).
    pub time_scale: f64,
    /// Bulk job processing delay, sim milliseconds.
    pub bulk_delay_ms: u64,
    /// Window in which a second refresh of the same refresh token loses, real milliseconds.
    pub refresh_window_ms: u64,
    /// Outbound loop tick, real milliseconds.
    pub outbound_tick_ms: u64,
    /// Outbound HTTP timeout, real milliseconds (Salesforce: about 60 s).
    pub outbound_timeout_ms: u64,
    /// Extra CA files (PEM) the outbound client trusts besides the sim's own CA.
    pub outbound_ca_files: Vec<PathBuf>,
    /// Create the default org (`acme`, production) when true.
    pub default_org: bool,
    /// Further orgs.
    pub orgs: Vec<OrgSpec>,
    /// Client apps registered globally (installed by orgs that name them).
    pub apps: Vec<AppSpec>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            https_port: 0,
            http_port: Some(0),
            ca_dir: None,
            seed: 42,
            page_size: 2000,
            auto_approve: true,
            time_scale: 1.0,
            bulk_delay_ms: 1000,
            refresh_window_ms: 500,
            outbound_tick_ms: 20,
            outbound_timeout_ms: 60_000,
            outbound_ca_files: Vec::new(),
            default_org: true,
            orgs: Vec::new(),
            apps: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Reads a `.toml` or `.json` file.
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path)?;
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| SimError::Config(format!("{}: {e}", path.display())))
        } else {
            toml::from_str(&text).map_err(|e| SimError::Config(format!("{}: {e}", path.display())))
        }
    }
}

fn user(username: &str, first: &str, last: &str, title: &str, manager: Option<&str>, role: &str, parent: Option<&str>) -> UserSpec {
    let mut fields = serde_json::Map::new();
    fields.insert("isQstreamUser__c".into(), serde_json::Value::Bool(true));
    UserSpec {
        username: username.into(),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        title: Some(title.into()),
        department: Some("Sales".into()),
        manager: manager.map(Into::into),
        role: Some(role.into()),
        parent_role: parent.map(Into::into),
        fields,
        ..UserSpec::default()
    }
}

/// The default org: `Acme` (production, My Domain `acme`), the default app installed,
/// and a small team: admin, a VP, two reps.
pub fn default_org() -> OrgSpec {
    OrgSpec {
        apps: vec![AppSpec::default()],
        users: vec![
            user("admin@acme.example", "Ada", "Admin", "CEO", None, "CEO", None),
            user("vp@acme.example", "Victor", "Price", "VP Sales", Some("admin@acme.example"), "VP Sales", Some("CEO")),
            user("ana@acme.example", "Ana", "Silva", "Account Executive", Some("vp@acme.example"), "Sales Rep", Some("VP Sales")),
            user("ben@acme.example", "Ben", "Okafor", "Account Executive", Some("vp@acme.example"), "Sales Rep", Some("VP Sales")),
        ],
        ..OrgSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_seed_file() {
        let c: SimConfig = toml::from_str(
            r#"
page_size = 500
seed = 9

[[orgs]]
name = "Globex"
my_domain = "globex--uat"
sandbox = true
install_apps = ["3MVG9sfsim.DefaultConsumerKey.forcelink"]

[[orgs.users]]
username = "hank@globex.example"
fields = { isQstreamUser__c = true }

[[orgs.objects]]
name = "Badge__c"
fields = [{ name = "Key__c", type = "string", externalId = true }]

[[orgs.outbound_rules]]
object = "Contact"
fields = ["Email"]
endpoint_url = "http://127.0.0.1:1/ob"
"#,
        )
        .expect("toml");
        assert_eq!(c.page_size, 500);
        assert!(c.default_org);
        assert_eq!(c.orgs[0].users[0].username, "hank@globex.example");
        assert!(c.orgs[0].objects[0].fields[0].external_id);
    }
}
