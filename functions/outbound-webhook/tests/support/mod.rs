//! What the outbound-webhook suites share: the site, hand-written SOAP messages and their
//! ids, and running the workflow queue dry.
// Each suite compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use forcelink::domain::record::{self, Versioned};
use forcelink::domain::report::RunReport;
use forcelink::domain::workflow::{endpoint_secret, workflow_id};
use forcelink::domain::{Connection, ConnectionStatus};
use forcelink::ports::Cond;
use forcelink_stack::{Backend, Stack};

pub const ORG: &str = "00D5g000000AbCdEAK";
pub const ORG15: &str = "00D5g000000AbCd";

/// One notification's XML; `prefix` is the sObject namespace prefix, `None` values are nil.
pub fn note(nid: &str, object: &str, prefix: &str, fields: &[(&str, Option<&str>)]) -> String {
    let mut s = format!(
        "<Notification><Id>{nid}</Id><sObject xsi:type=\"{prefix}:{object}\" xmlns:{prefix}=\"urn:sobject.enterprise.soap.sforce.com\">"
    );
    for (k, v) in fields {
        match v {
            Some(v) => s.push_str(&format!("<{prefix}:{k}>{v}</{prefix}:{k}>")),
            None => s.push_str(&format!("<{prefix}:{k} xsi:nil=\"true\"/>")),
        }
    }
    s.push_str("</sObject></Notification>");
    s
}

pub fn envelope(org: &str, notes: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>{org}</OrganizationId><ActionId>04k5g000000XyZaAAB</ActionId><SessionId xsi:nil=\"true\"/><EnterpriseUrl>https://x/services/Soap/c/64.0/{ORG15}</EnterpriseUrl><PartnerUrl>https://x/services/Soap/u/64.0/{ORG15}</PartnerUrl>{}</notifications></soapenv:Body></soapenv:Envelope>",
        notes.concat()
    )
}

/// A notification id (18 chars) for `n`.
pub fn nid(n: usize) -> String {
    forcelink::domain::ids::to_18(&format!("04l5g{n:010}")).unwrap()
}
pub fn cid(n: usize) -> String {
    forcelink::domain::ids::to_18(&format!("0035g{n:010}")).unwrap()
}

pub fn contact_fields(n: usize, stamp: &str, name: &str) -> Vec<(String, Option<String>)> {
    vec![
        ("Id".into(), Some(cid(n))),
        ("Email".into(), Some(format!("p{n}@example.com"))),
        ("FirstName".into(), Some(name.into())),
        ("MobilePhone".into(), if n.is_multiple_of(2) { Some(format!("+1555000{n:04}")) } else { None }),
        ("Survey_Opt_In__c".into(), Some("true".into())),
        ("SystemModstamp".into(), Some(stamp.into())),
    ]
}

pub fn contact_note(n: usize, stamp: &str, name: &str, prefix: &str) -> String {
    let f = contact_fields(n, stamp, name);
    let refs: Vec<(&str, Option<&str>)> = f.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
    note(&nid(n), "Contact", prefix, &refs)
}

/// A stack with site `acme` (its `production` connection connected to [`ORG`]) running
/// `workflows` (`[[sites.workflows]]` tables), with `overrides` of the harness's settings.
pub async fn start(backend: Backend, overrides: &[(&str, &str)], workflows: &str) -> Stack {
    let site = format!(
        r#"
[[sites]]
id = "acme"
name = "Acme"
platform_url = "https://acme.platform.example"
default_connection = "production"
sender = {{ from = "Acme <learning@acme.example>" }}

[[sites.connections]]
name = "production"
{workflows}"#
    );
    let stack = Stack::start_with(backend, Default::default(), overrides, &site).await;
    let store = stack.deps.store.as_ref();
    let Versioned { record: mut conn, .. } = Connection::load(store, "acme", "production").await.unwrap().unwrap();
    conn.org_id = Some(ORG.into());
    conn.status = ConnectionStatus::Connected;
    record::save(store, &conn, Cond::Always).await.unwrap();
    stack
}

/// A workflow's endpoint path.
pub fn endpoint(s: &Stack, workflow: &str) -> String {
    let id = workflow_id("acme", workflow);
    format!("/outbound/{id}/{}", endpoint_secret(s.deps.keys.as_ref(), &id))
}

/// Runs everything queued, as the event source mapping would, with retries at once.
pub async fn drain(s: &Stack) {
    let q = s.deps.workflow_queue.clone().unwrap();
    for _ in 0..50 {
        if outbound_webhook::runner::pump(&s.deps, q.as_ref(), Duration::ZERO, Some(Duration::ZERO)).await.unwrap() == 0 {
            return;
        }
    }
    panic!("the workflow queue does not drain");
}

/// The site's run reports.
pub async fn reports(s: &Stack) -> Vec<RunReport> {
    forcelink::domain::report::list(s.deps.store.as_ref(), "acme").await.unwrap()
}
