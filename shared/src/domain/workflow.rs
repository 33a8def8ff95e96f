//! A workflow: "when Salesforce sends an outbound message for object X (matching these
//! conditions), run these tasks".

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use super::record::Record;
use super::{keys, piped};
use crate::ports::keyring::KeyRing;

/// A workflow of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub site: String,
    /// Unique within the site, chosen by the operator.
    pub name: String,
    /// Opaque global id in the endpoint URL (`/outbound/{id}/{secret}`).
    pub id: String,
    /// The sObject type the outbound message carries, e.g. `Contact`.
    pub object: String,
    /// All must hold for the tasks to run; otherwise the run is `skipped`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub tasks: Vec<Task>,
    /// The connection whose org sends the messages; the site's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A test on one field of the notification's sObject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub op: ConditionOp,
    /// Compared as text; `null` matches a nil field. Ignored by `is_null`/`not_null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A condition's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOp {
    Equals,
    NotEquals,
    Contains,
    IsNull,
    NotNull,
}

/// One task of a workflow. Text fields may hold `{Field}` placeholders (piped text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    /// Creates or updates a directory contact in a mailing list.
    UpsertContact {
        list: String,
        /// Contact field → template, e.g. `email = "{Email}"`. `email` is required.
        fields: BTreeMap<String, String>,
    },
    /// Sends an invitation email (and SMS where configured) with a signed link.
    SendInvitation {
        /// Recipient template, e.g. `{Email}`.
        to: String,
        subject: String,
        /// Text body; `{link}` is replaced by the signed link.
        body: String,
        /// The platform target the link opens (a path under the site's platform URL).
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sms: Option<SmsSettings>,
        /// What a later attempt does with an email whose send ended with an unknown outcome.
        #[serde(default)]
        on_unknown: OnUnknown,
    },
}

/// What to do with an email that may or may not have gone out (a timeout, a reset after the
/// request was written, a server error, a run that ended during the send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknown {
    /// Record it as `unknown` in the run report and never send it again.
    #[default]
    Report,
    /// Send it again on the next attempt (a recipient may get it twice).
    Resend,
}

/// SMS for an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSettings {
    /// The sObject field holding the phone number, e.g. `MobilePhone`.
    pub phone_field: String,
    pub sender: String,
}

/// The placeholder an invitation fills with its signed link (not a record field).
pub const LINK_PLACEHOLDER: &str = "link";

impl Workflow {
    /// The record fields the workflow reads: `Id`, `SystemModstamp`, the conditions' fields,
    /// the tasks' placeholders and SMS phone fields; each once (ignoring case), in order.
    pub fn fields(&self) -> Vec<String> {
        let mut names: Vec<&str> = vec!["Id", "SystemModstamp"];
        names.extend(self.conditions.iter().map(|c| c.field.as_str()));
        for task in &self.tasks {
            match task {
                Task::UpsertContact { fields, .. } => names.extend(fields.values().flat_map(|t| piped::placeholders(t))),
                Task::SendInvitation { to, subject, body, sms, .. } => {
                    names.extend([to, subject, body].into_iter().flat_map(|t| piped::placeholders(t)).filter(|n| *n != LINK_PLACEHOLDER));
                    names.extend(sms.iter().map(|s| s.phone_field.as_str()));
                }
            }
        }
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
                out.push(name.to_string());
            }
        }
        out
    }
}

impl Record for Workflow {
    fn pk(&self) -> String {
        keys::site_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::workflow_sk(&self.name)
    }
    fn gsi1(&self) -> Option<(String, String)> {
        Some((keys::workflow_index(&self.id), self.site.clone()))
    }
}

/// The endpoint id of a workflow: stable for a (site, name), opaque, URL-safe.
pub fn workflow_id(site: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{site}\n{name}").as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("wf_{hex}")
}

/// The secret in a workflow's endpoint URL: an HMAC of its id under the current signing key,
/// as `{kid}.{tag}`. Nothing is stored; old URLs keep working after a key rotation.
pub fn endpoint_secret(keys: &dyn KeyRing, workflow_id: &str) -> String {
    let sig = keys.sign(endpoint_message(workflow_id).as_bytes());
    format!("{}.{}", sig.kid, B64.encode(sig.tag))
}

/// Whether `secret` is a valid endpoint secret for `workflow_id` (constant-time).
pub fn verify_endpoint_secret(keys: &dyn KeyRing, workflow_id: &str, secret: &str) -> bool {
    let Some((kid, tag)) = secret.split_once('.') else { return false };
    match B64.decode(tag) {
        Ok(tag) => keys.verify(kid, endpoint_message(workflow_id).as_bytes(), &tag),
        Err(_) => false,
    }
}

/// The URL to paste into the Salesforce outbound message.
pub fn endpoint_url(public_url: &url::Url, keys: &dyn KeyRing, workflow_id: &str) -> String {
    format!("{}/outbound/{workflow_id}/{}", public_url.as_str().trim_end_matches('/'), endpoint_secret(keys, workflow_id))
}

fn endpoint_message(workflow_id: &str) -> String {
    format!("outbound-endpoint\n{workflow_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_what_the_workflow_reads() {
        let w: Workflow = serde_json::from_value(serde_json::json!({
            "site": "s", "name": "n", "id": "wf_1", "object": "Contact",
            "conditions": [{"field": "Opt_In__c", "op": "equals", "value": "true"}],
            "tasks": [
                {"type": "upsert_contact", "list": "l", "fields": {"email": "{Email}", "name": "{FirstName} {LastName}"}},
                {"type": "send_invitation", "to": "{email}", "subject": "Hi {FirstName}", "body": "{link} {Account.Name}",
                 "target": "/s", "sms": {"phone_field": "MobilePhone", "sender": "ACME"}},
            ],
        }))
        .unwrap();
        assert_eq!(w.fields(), ["Id", "SystemModstamp", "Opt_In__c", "Email", "FirstName", "LastName", "Account.Name", "MobilePhone"]);
    }
}
