//! `forcelink status --json` on a connected site prints no sealed value: no `tokens_sealed`, no
//! `client_secret_sealed`, nothing sealed or secret at any depth.

use std::path::Path;
use std::process::Command;

use forcelink::domain::connection::{ConnectionStatus, Environment};
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::{Deps, Settings};

const BIN: &str = env!("CARGO_BIN_EXE_forcelink");
const ACCESS: &str = "00Dstatus!ACCESS-TOKEN-PLAINTEXT";
const REFRESH: &str = "5Aep861STATUS-REFRESH-PLAINTEXT";
const CLIENT_SECRET: &str = "CUSTOMER-APP-SECRET-PLAINTEXT";

const SITE: &str = r#"
[[sites]]
id = "acme"
name = "Acme Corp"
platform_url = "https://acme.platform.example"
platform_sso_url = "https://acme.platform.example/sso/salesforce"
admin_email = "lms-admin@acme.example"
default_connection = "production"

[[sites.connections]]
name = "production"
environment = "production"
client_id = "3MVG9customer.app"
client_secret_env = "ACME_SF_SECRET"
"#;

fn forcelink(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FORCELINK_DATA_DIR", data)
        .env("ACME_SF_SECRET", CLIENT_SECRET)
        .env("RUST_LOG", "warn");
    cmd
}

/// Applies the site, then connects it by hand: sealed tokens, `connected`, an org.
async fn connected_site(data: &Path) -> String {
    let file = data.join("site.toml");
    std::fs::write(&file, SITE).unwrap();
    let applied = forcelink(data).arg("apply").arg(&file).output().unwrap();
    assert!(applied.status.success(), "apply: {}", String::from_utf8_lossy(&applied.stderr));
    let settings = Settings::from_lookup(|k| (k == "FORCELINK_DATA_DIR").then(|| data.display().to_string())).unwrap();
    let deps = Deps::from_settings(settings).await.unwrap();
    let bundle = TokenBundle { access_token: ACCESS.into(), refresh_token: Some(REFRESH.into()) };
    let sealed = session::seal_tokens(deps.keys.as_ref(), "acme", "production", &bundle).await.unwrap();
    let conn = session::update_connection(&deps, "acme", "production", |c| {
        c.tokens_sealed = Some(sealed.clone());
        c.status = ConnectionStatus::Connected;
        c.org_id = Some("00D5g000000AbCdEAK".into());
        c.instance_url = Some("https://acme.my.salesforce.com".into());
    })
    .await
    .unwrap();
    assert_eq!(conn.environment, Environment::Production);
    let client = conn.client.expect("the customer's app is stored");
    assert!(!client.client_secret_sealed.is_empty());
    format!("{sealed}\n{}", client.client_secret_sealed)
}

fn keys_of(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys_of(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys_of(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn status_json_prints_no_sealed_values() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = connected_site(dir.path()).await;
    let shown = forcelink(dir.path()).args(["status", "--json"]).output().unwrap();
    assert!(shown.status.success(), "status: {}", String::from_utf8_lossy(&shown.stderr));
    let text = String::from_utf8(shown.stdout).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value[0]["connections"][0]["status"], "connected", "{text}");
    assert_eq!(value[0]["connections"][0]["client"]["client_id"], "3MVG9customer.app", "{text}");
    let mut keys = Vec::new();
    keys_of(&value, &mut keys);
    for key in &keys {
        assert!(!key.contains("sealed") && !key.contains("secret"), "status --json has a field {key:?}:\n{text}");
    }
    for secret in sealed.lines().chain([ACCESS, REFRESH, CLIENT_SECRET]) {
        assert!(!text.contains(secret), "status --json prints a secret:\n{text}");
    }
    let plain = forcelink(dir.path()).arg("status").output().unwrap();
    let plain = String::from_utf8(plain.stdout).unwrap();
    for secret in sealed.lines().chain([ACCESS, REFRESH, CLIENT_SECRET]) {
        assert!(!plain.contains(secret), "status prints a secret:\n{plain}");
    }
}
