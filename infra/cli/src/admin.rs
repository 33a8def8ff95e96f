//! Admin verbs over the store: `apply`, `status` (read-only), `rotate-keys`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use forcelink::backends::local_keyring::LocalKeyRing;
use forcelink::config;
use forcelink::deps::files;
use forcelink::domain::record::{self, Versioned};
use forcelink::domain::workflow::endpoint_url;
use forcelink::domain::{Connection, ExportMapping, Site, SyncJob, Workflow, keys};
use forcelink::ports::Query;
use forcelink::salesforce::warnings::{IdlePolicy, warnings_for};
use forcelink::settings::Backend;
use forcelink::{Deps, Settings};

/// `forcelink apply FILE`.
pub async fn apply(settings: Settings, file: &Path) -> anyhow::Result<ExitCode> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {shown}"))?;
    let specs = match config::parse(&shown, &text, &|var| std::env::var(var).ok()) {
        Ok(specs) => specs,
        Err(e) => {
            eprintln!("forcelink: {e}");
            eprintln!("nothing was applied");
            return Ok(ExitCode::from(2));
        }
    };
    let deps = Deps::from_settings(settings).await?;
    let summary = config::apply(deps.store.as_ref(), deps.keys.as_ref(), &specs).await?;
    println!("applied {shown}: {} records written, {} removed", summary.written, summary.deleted);
    for spec in &specs {
        println!("site {} ({})", spec.site.id, spec.site.name);
        for wf in &spec.workflows {
            println!("  workflow {} on {}: {}", wf.name, wf.object, endpoint_url(&deps.settings.public_url, deps.keys.as_ref(), &wf.id));
        }
    }
    for orphan in &summary.orphan_connections {
        println!("note: connection {orphan} is no longer in the file; it stays until removed");
    }
    for spec in &specs {
        for (connection, email) in forcelink::salesforce::connections::invite_sync_users(&deps, &spec.site.id).await? {
            println!("invited sync user {email} to authorize {connection}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One site's configuration as stored.
#[derive(serde::Serialize)]
struct SiteStatus {
    site: Site,
    connections: Vec<Connection>,
    workflows: Vec<WorkflowStatus>,
    exports: Vec<ExportMapping>,
    sync: Vec<SyncJob>,
    /// Held and failed export events, org pauses, API budget (`export_pusher::status`).
    export: Option<export_pusher::status::ExportStatus>,
    /// Credential warnings, read from the stored connections (no Salesforce call, no email;
    /// the scheduled check sends them).
    warnings: Vec<forcelink::salesforce::Warning>,
}

#[derive(serde::Serialize)]
struct WorkflowStatus {
    #[serde(flatten)]
    workflow: Workflow,
    endpoint: String,
}

/// `forcelink status [SITE]`: reads only (the scheduled credential check refreshes and emails).
pub async fn status(settings: Settings, only: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let deps = Deps::from_settings(settings).await?;
    let store = deps.store.as_ref();
    let sites: Vec<Site> = match only {
        Some(id) => match Site::load(store, id).await? {
            Some(Versioned { record, .. }) => vec![record],
            None => anyhow::bail!("no site {id:?}: apply a configuration first (forcelink apply FILE)"),
        },
        None => record::list(store, Query::prefix(keys::SITES_PK, "").on_gsi1()).await?,
    };
    let idle = IdlePolicy::of(&deps);
    let now = deps.clock.now();
    let mut out = Vec::with_capacity(sites.len());
    for site in sites {
        let pk = keys::site_pk(&site.id);
        let workflows: Vec<Workflow> = record::list(store, Query::prefix(&pk, keys::WORKFLOW_PREFIX)).await?;
        let connections: Vec<Connection> = record::list(store, Query::prefix(&pk, keys::CONNECTION_PREFIX)).await?;
        out.push(SiteStatus {
            warnings: connections.iter().flat_map(|c| warnings_for(c, now, idle)).collect(),
            connections,
            workflows: workflows
                .into_iter()
                .map(|w| WorkflowStatus { endpoint: endpoint_url(&deps.settings.public_url, deps.keys.as_ref(), &w.id), workflow: w })
                .collect(),
            exports: record::list(store, Query::prefix(&pk, keys::EXPORT_PREFIX)).await?,
            sync: record::list(store, Query::prefix(&pk, keys::SYNC_PREFIX)).await?,
            export: export_pusher::status::of_site(&deps, &site.id).await.ok(),
            site,
        });
    }
    if json {
        let mut value = serde_json::to_value(&out)?;
        redact_sealed(&mut value);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if out.is_empty() {
        println!("no sites yet: apply a configuration (forcelink apply infra/examples/acme.toml)");
    } else {
        for s in &out {
            print!("{}", render(s));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Drops every sealed or secret field (`tokens_sealed`, `client_secret_sealed`, …) from status
/// JSON, at any depth.
fn redact_sealed(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !(k.contains("sealed") || k.contains("secret")));
            map.values_mut().for_each(redact_sealed);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_sealed),
        _ => {}
    }
}

fn render(s: &SiteStatus) -> String {
    let mut t = String::new();
    let site = &s.site;
    let _ = writeln!(t, "site {} ({})", site.id, site.name);
    let _ = writeln!(t, "  platform   {}", site.platform_url);
    if let Some(l) = &site.tabs.lightning {
        let _ = writeln!(t, "  lightning  {l}");
    }
    if let Some(c) = &site.tabs.classic {
        let _ = writeln!(t, "  classic    {c}");
    }
    let _ = writeln!(t, "  force SSO  {}", if site.force_sso { "on" } else { "off" });
    let _ = writeln!(t, "  connections ({}):", s.connections.len());
    for c in &s.connections {
        let default = if site.default_connection.as_deref() == Some(c.name.as_str()) { " [default]" } else { "" };
        let _ = writeln!(
            t,
            "    {}{default}: {} · {}",
            c.name,
            c.environment,
            serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
        );
        if let Some(org) = &c.org_id {
            let _ = writeln!(t, "      org {org} · instance {}", c.instance_url.as_deref().unwrap_or("?"));
        }
        if let Some(user) = &c.user {
            let _ = writeln!(t, "      user {} ({})", user.username, user.id);
        }
        match (&c.sync_user_email, &c.invited) {
            (_, Some(i)) => {
                let _ = writeln!(t, "      sync user {} · invited {}", i.email, i.at);
            }
            (Some(e), None) => {
                let _ = writeln!(t, "      sync user {e} · not invited yet (forcelink invite {})", site.id);
            }
            (None, None) => {}
        }
        if let Some(at) = c.last_verified_at {
            let _ = writeln!(t, "      last verified {at}");
        }
        if let Some((used, max)) = c.api_usage {
            let _ = writeln!(t, "      API usage {used}/{max}");
        }
        if let Some(d) = c.expires_on {
            let _ = writeln!(t, "      expires {d} (warning {} days before)", c.warn_days);
        }
        if let Some(at) = c.last_refreshed_at {
            let _ = writeln!(t, "      last refreshed {at}");
        }
        for w in s.warnings.iter().filter(|w| w.connection == c.name) {
            let kind = serde_json::to_value(w.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let _ = writeln!(t, "      WARNING [{kind}] {}", w.message);
        }
    }
    let _ = writeln!(t, "  workflows ({}):", s.workflows.len());
    for w in &s.workflows {
        let state = if w.workflow.enabled { "" } else { " [disabled]" };
        let _ = writeln!(t, "    {} on {}{state}: {} task(s)", w.workflow.name, w.workflow.object, w.workflow.tasks.len());
        let _ = writeln!(t, "      endpoint {}", w.endpoint);
    }
    let _ = writeln!(t, "  exports ({}):", s.exports.len());
    for e in &s.exports {
        let _ = writeln!(t, "    {} → {} by {}", e.kind, e.object, e.external_id_field);
    }
    if let Some(x) = &s.export {
        t.push_str(&export_pusher::status::render(x));
    }
    let _ = writeln!(t, "  sync jobs ({}):", s.sync.len());
    for j in &s.sync {
        let every = j.every_minutes.map_or("on demand".to_string(), |m| format!("every {m} min"));
        let _ = writeln!(t, "    {} ({}): {every}", j.name, j.kind.describe());
    }
    t
}

/// `forcelink rotate-keys`.
pub async fn rotate_keys(settings: Settings) -> anyhow::Result<ExitCode> {
    let kid = match &settings.backend {
        Backend::Embedded { data_dir } => LocalKeyRing::rotate(&data_dir.join(files::KEYS))?,
        Backend::Aws { table, kms_key_id, .. } => {
            let config = forcelink::backends::aws::aws_config(None).await;
            let store =
                std::sync::Arc::new(forcelink::backends::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table.clone()));
            let ring = forcelink::backends::kms::KmsKeyRing::load(aws_sdk_kms::Client::new(&config), kms_key_id.clone(), store).await?;
            ring.rotate().await?
        }
    };
    println!("new signing key {kid}; older keys keep verifying");
    Ok(ExitCode::SUCCESS)
}
