//! The `outbound` flow of `forcelink demo`: a Contact created in the simulated org fires an
//! outbound message at the local stack, which acknowledges it, then creates a directory contact
//! and emails an invitation with a signed link; the run report shows both tasks.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use forcelink::config;
use forcelink::contact_ref;
use forcelink::domain::record::{self, Versioned};
use forcelink::domain::report::{RunReport, RunStatus};
use forcelink::domain::workflow::{endpoint_url, workflow_id};
use forcelink::domain::{Connection, ConnectionStatus, Contact, keys};
use forcelink::ports::{Cond, Query};
use forcelink::settings::MailTransport;

use crate::demo::Demo;

const SITE: &str = "demo-outbound";
const WORKFLOW: &str = "contact-invite";

/// Runs the flow.
pub async fn flow(d: &Demo) -> anyhow::Result<()> {
    let store = d.deps.store.as_ref();
    let sim = sfsim::Sim::start(sfsim::SimConfig::default()).await.context("cannot start the simulator")?;
    let org = sim.org("acme")?;
    d.step(format!("simulated Salesforce org {} ({})", org.name, org.id));

    let toml = format!(
        r#"[[sites]]
id = "{SITE}"
name = "Outbound demo"
platform_url = "https://demo.platform.example"
default_connection = "production"
sender = {{ from = "Demo Learning <learning@demo.example>" }}

[[sites.connections]]
name = "production"

[[sites.workflows]]
name = "{WORKFLOW}"
object = "Contact"
conditions = [{{ field = "Survey_Opt_In__c", op = "equals", value = "true" }}]
tasks = [
  {{ type = "upsert_contact", list = "salesforce-contacts", fields = {{ email = "{{Email}}", first_name = "{{FirstName}}", last_name = "{{LastName}}" }} }},
  {{ type = "send_invitation", to = "{{Email}}", subject = "A quick question, {{FirstName}}", body = "Hi {{FirstName}},\n\nTell us how it went: {{link}}\n", target = "/surveys/onboarding", sms = {{ phone_field = "Phone", sender = "DEMO" }} }},
]
"#
    );
    config::apply_text(store, d.deps.keys.as_ref(), "demo-outbound.toml", &toml).await?;
    let Versioned { record: mut conn, .. } =
        Connection::load(store, SITE, "production").await?.context("the connection was not applied")?;
    conn.org_id = Some(org.id.clone());
    conn.status = ConnectionStatus::Connected;
    record::save(store, &conn, Cond::Always).await?;
    d.step(format!("site {SITE}: connection production → org {} (as the OAuth flow would record it)", org.id));

    let id = workflow_id(SITE, WORKFLOW);
    let url = endpoint_url(&d.deps.settings.public_url, d.deps.keys.as_ref(), &id);
    d.step(format!("workflow {WORKFLOW} on Contact: endpoint {}/outbound/{id}/<secret>", d.base));
    let fields = ["Email", "FirstName", "LastName", "Phone", "Survey_Opt_In__c", "SystemModstamp"];
    sim.add_outbound_rule(
        &org.id,
        sfsim::RuleSpec {
            name: "Contact to forcelink".into(),
            object: "Contact".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            endpoint_url: url,
            ..sfsim::RuleSpec::default()
        },
    )?;
    d.step(format!("Salesforce outbound message on Contact sends {}", fields.join(", ")));

    let record = serde_json::json!({
        "FirstName": "Ana", "LastName": "Silva", "Email": "ana.silva@example.com",
        "Phone": "+15550100", "Survey_Opt_In__c": true,
    });
    let serde_json::Value::Object(record) = record else { bail!("bad record") };
    let created = sim.insert_records(&org.id, "Contact", vec![record])?;
    let contact_id = created.first().context("the simulator created no record")?.clone();
    d.step(format!("created Contact {contact_id} (Ana Silva) in Salesforce"));

    let started = Instant::now();
    let delivery = loop {
        if let Some(del) = sim.deliveries(&org.id)?.into_iter().find(|del| del.record_ids.contains(&contact_id) && del.acked) {
            break del;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let log: Vec<String> = sim.deliveries(&org.id)?.iter().map(|d| format!("{:?} {:?}", d.status, d.error)).collect();
            bail!("Salesforce's outbound message was not acknowledged within 15 s: {log:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    d.step(format!(
        "Salesforce delivered notification {} → HTTP {} with the Ack ({} ms after the write)",
        delivery.notification_ids.join(", "),
        delivery.status.unwrap_or_default(),
        started.elapsed().as_millis()
    ));

    let queue = d.deps.workflow_queue.clone().context("no workflow queue")?;
    let report = loop {
        outbound_webhook::runner::pump(&d.deps, queue.as_ref(), Duration::from_millis(200), Some(Duration::ZERO)).await?;
        let reports: Vec<RunReport> = forcelink::domain::report::list(store, SITE).await?;
        if let Some(r) = reports.into_iter().find(|r| r.status != RunStatus::Running) {
            break r;
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("the workflow did not run within 20 s");
        }
    };
    d.step(format!("workflow run {}: {:?}", report.id, report.status));
    for t in &report.tasks {
        d.step(format!("  {}: {}", t.name, t.output.as_deref().or(t.error.as_deref()).unwrap_or("")));
    }
    if report.status != RunStatus::Succeeded {
        bail!("the run did not succeed: {:?}", report.error);
    }
    let contacts: Vec<Contact> =
        record::list(store, Query::prefix(keys::directory_pk(SITE), format!("{}salesforce-contacts#", keys::CONTACT_PREFIX))).await?;
    let c = contacts.first().context("no directory contact was created")?;
    if c.email != "ana.silva@example.com" || c.fields.get("first_name").map(String::as_str) != Some("Ana") {
        bail!("the contact is wrong: {c:?}");
    }
    d.step(format!("directory contact {} <{}>, {} embedded Salesforce fields", c.id, c.email, c.embedded.len()));
    if let MailTransport::Outbox(dir) = &d.deps.settings.mail {
        let mails: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|m| m.contains("ana.silva@example.com"))
            .collect();
        if mails.len() != 1 {
            bail!("expected one invitation email in the outbox, found {}", mails.len());
        }
        let text = mails[0].replace("=\r\n", "").replace("=3D", "=");
        let start = text.find(&format!("{}/l/", d.base)).context("no link in the invitation")?;
        let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        d.step(format!("outbox: one invitation email to ana.silva@example.com with link {}…", &link[..link.len().min(60)]));
        follow_invitation(d, &link, &c.id).await?;
    }
    let sms = record::all_items(store, Query::prefix(keys::sms_pk(SITE), "")).await?;
    d.step(format!("SMS outbox: {} message(s) to +15550100 (no SMS provider: the outbox is the hand-off)", sms.len()));
    Ok(())
}

/// Clicks the invitation's link as the contact would in a browser, and checks the contact
/// reference the platform receives against the published keys.
async fn follow_invitation(d: &Demo, link: &str, contact: &str) -> anyhow::Result<()> {
    let resp = d.http.get(link).header("user-agent", "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15").send().await?;
    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if resp.status() != reqwest::StatusCode::FOUND || !location.starts_with("https://demo.platform.example/surveys/onboarding?") {
        bail!("the invitation link answered {} (location {location:?})", resp.status());
    }
    let url = url::Url::parse(&location)?;
    let token = url.query_pairs().find(|(k, _)| k == contact_ref::PARAM).map(|(_, v)| v.to_string()).context("no contact reference")?;
    let jwks: serde_json::Value = d.http.get(format!("{}/.well-known/jwks.json", d.base)).send().await?.json().await?;
    let who = contact_ref::verify(&jwks, &token, &d.base, "https://demo.platform.example", d.deps.clock.epoch_secs())?;
    if who.sub != contact || who.email != "ana.silva@example.com" {
        bail!("the contact reference names {} <{}>", who.sub, who.email);
    }
    d.step(format!(
        "clicked: 302 to the platform's /surveys/onboarding with {}=<EdDSA token: contact {} of list {}, valid {} s>, verified with /.well-known/jwks.json",
        contact_ref::PARAM,
        who.sub,
        who.list,
        who.exp - who.iat
    ));
    Ok(())
}
