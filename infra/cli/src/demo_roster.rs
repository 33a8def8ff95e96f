//! The `roster` flow of `forcelink demo`: a simulated org of 2,000 users with a 6-level
//! manager tree and a custom field; a dry run shows the diff, the full sync mirrors the
//! flagged users and builds the hierarchy groups, an unchanged re-run writes nothing, 1% of
//! users changed are the only writes, and a generic SOQL job loads redacted documents.

use anyhow::{Context, ensure};
use forcelink::domain::record;
use forcelink::domain::{Counter, Document, Group, GroupKind, keys};
use forcelink::ports::Query;
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::{Deps, config};
use roster_sync::RunOptions;
use serde_json::{Map, json};

use crate::demo::Demo;

const SITE: &str = "demo-roster";
const USERS: usize = 2_000;

/// Runs the flow.
pub async fn flow(d: &Demo) -> anyhow::Result<()> {
    let sim = sfsim::Sim::start(sfsim::SimConfig::default()).await.context("cannot start the simulator")?;
    let org = sim.org("acme")?;
    let region: sfsim::FieldDef = serde_json::from_value(json!({"name": "Region__c", "type": "string"}))?;
    let spec = sfsim::GenSpec {
        count: USERS,
        depth: 6,
        roles: true,
        qstream_share: 0.9,
        inactive_share: 0.02,
        custom_fields: vec![region],
        domain: "demo.example".into(),
    };
    sim.generate_users("acme", spec)?;
    d.step(format!("simulated org {} with {USERS} generated users: 6-level manager tree, Region__c, 90% flagged isQstreamUser__c", org.id));

    // The demo changes users and syncs at once: no lag window (production keeps 5 minutes).
    let vars = [("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string()), ("FORCELINK_SYNC_LAG_SECS", "0".into())];
    let deps = Deps::from_settings(d.settings("roster", &vars)?).await?;
    let toml = format!(
        r#"[[sites]]
id = "{SITE}"
name = "Roster demo"
platform_url = "https://demo.platform.example"
default_connection = "production"

[[sites.connections]]
name = "production"

[[sites.sync]]
name = "roster"
type = "roster"
every_minutes = 15
tag_fields = {{ region = "Region__c", department = "Department" }}

[[sites.sync]]
name = "users-soql"
type = "soql"
query = "SELECT Username, Email, Title, LastModifiedDate FROM User WHERE IsActive = true"
date_field = "LastModifiedDate"
mapping = {{ title = "{{Title}}", source_value = "{{Email}}" }}
record_limit = 100
redact = [{{ kind = "email" }}]
"#
    );
    config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "demo-roster.toml", &toml).await?;
    let token = sim.issue_token("admin@acme.example")?;
    session::connect_with_tokens(
        &deps,
        SITE,
        "production",
        &org.id,
        &sim.https_url(),
        &TokenBundle { access_token: token, refresh_token: None },
    )
    .await?;
    d.step(format!("site {SITE}: roster job (tags region, department) and a SOQL job; connection production → {}", org.id));

    let job = roster_sync::runner::find_job(&deps, SITE, "roster").await?;
    let dry = roster_sync::run_job(&deps, &job, &RunOptions { dry_run: true, ..RunOptions::default() }).await?;
    let diff = &dry.diff;
    d.step(format!(
        "dry run: +{} users, ~{} updated, -{} deactivated, +{} groups (nothing written)",
        diff.added.count, diff.updated.count, diff.deactivated.count, diff.groups_added.count
    ));
    for line in diff.added.items.iter().take(3) {
        d.step(format!("    + {line}"));
    }

    let full = roster_sync::run_job(&deps, &job, &RunOptions::default()).await?.report;
    ensure!(
        full.counts.get(Counter::Added) == Some(diff.added.count),
        "the run added {:?}, the dry run said {}",
        full.counts.get(Counter::Added),
        diff.added.count
    );
    d.step(format!("full sync: {}", full.counts));
    let groups: Vec<Group> =
        record::list(deps.store.as_ref(), Query::prefix(keys::directory_pk(SITE), keys::GROUP_PREFIX).limit(1000)).await?;
    let senior = groups.iter().filter(|g| g.kind == GroupKind::Senior).count();
    ensure!(senior > 0, "no senior manager groups");
    d.step(format!(
        "hierarchy: {} frontline groups (direct reports), {senior} senior groups (managers of managers)",
        groups.len() - senior
    ));
    if let Some(g) = groups.iter().filter(|g| g.kind == GroupKind::Senior).max_by_key(|g| g.members.len()) {
        d.step(format!("    e.g. {:?}: {} managers below", g.name, g.members.len()));
    }

    let again = roster_sync::run_job(&deps, &job, &RunOptions::default()).await?.report;
    ensure!(
        again.counts.get(Counter::DirectoryWrites) == Some(0),
        "an unchanged re-run wrote {:?}",
        again.counts.get(Counter::DirectoryWrites)
    );
    d.step(format!("unchanged re-run: {} Salesforce call, 0 directory writes", again.counts.count(Counter::ApiCalls)));

    let flagged: Vec<String> = sim
        .records("acme", "User")?
        .into_iter()
        .filter_map(|u| {
            let v = serde_json::to_value(u).ok()?;
            (v["isQstreamUser__c"] == json!(true) && v["IsActive"] == json!(true)).then(|| v["Id"].as_str().map(str::to_string)).flatten()
        })
        .take(USERS / 100)
        .collect();
    for id in &flagged {
        let mut m = Map::new();
        m.insert("Region__c".into(), json!("EMEA-moved"));
        sim.update_record("acme", "User", id, m)?;
    }
    let inc = roster_sync::run_job(&deps, &job, &RunOptions::default()).await?.report;
    ensure!(inc.counts.get(Counter::DirectoryWrites) == Some(flagged.len() as u64), "1% changed wrote {:?}", inc.counts);
    d.step(format!("{} users changed Region__c: incremental run wrote exactly {} users", flagged.len(), flagged.len()));

    let soql = roster_sync::runner::find_job(&deps, SITE, "users-soql").await?;
    let loaded = roster_sync::run_job(&deps, &soql, &RunOptions::default()).await?.report;
    let docs: Vec<Document> = record::list(deps.store.as_ref(), Query::prefix(keys::document_pk(SITE), "users-soql#")).await?;
    ensure!(docs.len() == 100 && docs.iter().all(|d| d.source_value.contains("***@")), "documents: {}", docs.len());
    d.step(format!(
        "SOQL job: {} documents (record limit 100), emails masked, e.g. {:?}",
        loaded.counts.count(Counter::Added),
        docs[0].source_value
    ));
    Ok(())
}
