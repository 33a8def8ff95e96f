//! Outbound messages: per-org rules, a queue filled on every write, SOAP 1.1 delivery in batches
//! of up to 100, strict ack checking, exponential backoff capped at 2 h, dropping after 24 h,
//! optional duplicates and reordering, and a log of every attempt.

use crate::clock::fmt_soap;
use crate::ids::{self, prefix};
use crate::org::WriteCtx;
use crate::xml::{elements, esc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// The outbound namespace.
pub const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";

/// A rule to create: "when `object` is created or updated, send `fields` to `endpoint_url`".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleSpec {
    /// Label.
    pub name: String,
    /// Object API name, e.g. `Contact`.
    pub object: String,
    /// Selected fields (`Id` is always sent first).
    pub fields: Vec<String>,
    /// Endpoint URL (http or https).
    pub endpoint_url: String,
    /// Send a session id.
    pub send_session_id: bool,
    /// Username whose session is sent (default: the org's first user).
    pub session_user: Option<String>,
}

/// A rule with its `04k` action id.
#[derive(Debug, Clone, Serialize)]
pub struct OutboundRule {
    /// `04k…` (18 chars).
    pub id: String,
    /// Spec.
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Active.
    pub active: bool,
}

/// A queued notification.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    /// `04l…` notification id.
    pub notification_id: String,
    /// Rule (`04k`).
    pub rule_id: String,
    /// Record id.
    pub record_id: String,
    /// Queued at (sim time).
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt (sim time).
    #[serde(with = "time::serde::rfc3339")]
    pub next_at: OffsetDateTime,
    /// Being sent now.
    #[serde(skip)]
    pub in_flight: bool,
    /// Already acked once; this is a deliberate duplicate.
    pub duplicate: bool,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Sequence number.
    pub seq: u64,
    /// Sim time of the attempt.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Rule id.
    pub rule_id: String,
    /// Endpoint.
    pub endpoint: String,
    /// Notification ids in the message, in message order.
    pub notification_ids: Vec<String>,
    /// Record ids, in message order.
    pub record_ids: Vec<String>,
    /// HTTP status, if any answer came.
    pub status: Option<u16>,
    /// The answer was a proper Ack.
    pub acked: bool,
    /// Transport error or reason the answer was not an ack.
    pub error: Option<String>,
    /// Attempt number of the first notification (1 = first try).
    pub attempt: u32,
    /// Contains deliberate duplicates.
    pub duplicate: bool,
    /// The SOAP body sent.
    pub body: String,
}

/// A notification dropped after 24 h.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    /// Notification id.
    pub notification_id: String,
    /// Record id.
    pub record_id: String,
    /// Attempts made.
    pub attempts: u32,
}

/// Delivery behaviour knobs of an org.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundSettings {
    /// First retry delay, sim seconds (doubles each time).
    pub base_retry_secs: u64,
    /// Cap on the retry delay, sim seconds (2 h).
    pub max_retry_secs: u64,
    /// Drop after this age, sim seconds (24 h).
    pub drop_after_secs: u64,
    /// Share of acked notifications sent once more.
    pub duplicate_rate: f64,
    /// Shuffle notifications within and across messages.
    pub reorder: bool,
    /// Max notifications per message (≤ 100).
    pub batch_size: usize,
    /// Paused: queue but do not send.
    pub paused: bool,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            base_retry_secs: 15,
            max_retry_secs: 7200,
            drop_after_secs: 86_400,
            duplicate_rate: 0.0,
            reorder: false,
            batch_size: 100,
            paused: false,
        }
    }
}

/// An org's outbound rules, queue and log.
#[derive(Debug, Default)]
pub struct OutboundState {
    /// Rules.
    pub rules: Vec<OutboundRule>,
    /// Queue.
    pub queue: Vec<Pending>,
    /// Attempts log.
    pub deliveries: Vec<Delivery>,
    /// Dropped notifications.
    pub dropped: Vec<Dropped>,
    /// Settings.
    pub settings: OutboundSettings,
}

impl OutboundState {
    /// Queues a notification for every active rule on `object`.
    pub fn on_write(&mut self, object: &str, record_id: &str, ctx: &WriteCtx<'_>) {
        for r in self.rules.iter().filter(|r| r.active && r.spec.object.eq_ignore_ascii_case(object)) {
            self.queue.push(Pending {
                notification_id: ctx.ids.next(prefix::NOTIFICATION, "5g"),
                rule_id: r.id.clone(),
                record_id: record_id.to_string(),
                created: ctx.now,
                attempts: 0,
                next_at: ctx.now,
                in_flight: false,
                duplicate: false,
            });
        }
    }

    /// Retry delay after `attempts` failures.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = self.settings.base_retry_secs.saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
        Duration::from_secs(exp.min(self.settings.max_retry_secs))
    }
}

/// One notification to put in a message.
pub struct NoteBody<'a> {
    /// `04l` id.
    pub id: &'a str,
    /// Record fields (canonical names) or None if the record is gone.
    pub fields: Vec<(String, Value)>,
}

/// Builds the SOAP message exactly as Salesforce does.
pub fn soap_message(
    org18: &str,
    action_id: &str,
    session: Option<&str>,
    instance_url: &str,
    object: &str,
    notes: &[NoteBody<'_>],
) -> String {
    let org15 = ids::to15(org18);
    let mut s = String::with_capacity(512 + notes.len() * 512);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n <soapenv:Body>\n  <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n");
    s.push_str(&format!("   <OrganizationId>{org18}</OrganizationId>\n   <ActionId>{action_id}</ActionId>\n"));
    match session {
        Some(t) => s.push_str(&format!("   <SessionId>{}</SessionId>\n", esc(t))),
        None => s.push_str("   <SessionId xsi:nil=\"true\"/>\n"),
    }
    s.push_str(&format!(
        "   <EnterpriseUrl>{0}/services/Soap/c/64.0/{1}</EnterpriseUrl>\n   <PartnerUrl>{0}/services/Soap/u/64.0/{1}</PartnerUrl>\n",
        esc(instance_url),
        org15
    ));
    for n in notes {
        s.push_str(&format!(
            "   <Notification>\n    <Id>{}</Id>\n    <sObject xsi:type=\"sf:{}\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n",
            n.id,
            esc(object)
        ));
        for (k, v) in &n.fields {
            match v {
                Value::Null => s.push_str(&format!("     <sf:{k} xsi:nil=\"true\"/>\n")),
                Value::String(t) => {
                    let t = if crate::clock::parse_datetime(t).is_some() && t.len() == 28 && t.ends_with("+0000") {
                        crate::clock::parse_datetime(t).map(fmt_soap).unwrap_or_else(|| t.clone())
                    } else {
                        t.clone()
                    };
                    s.push_str(&format!("     <sf:{k}>{}</sf:{k}>\n", esc(&t)))
                }
                other => s.push_str(&format!("     <sf:{k}>{other}</sf:{k}>\n")),
            }
        }
        s.push_str("    </sObject>\n   </Notification>\n");
    }
    s.push_str("  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n");
    s
}

/// True only for a namespace-correct `notificationsResponse` whose `Ack` is `true`.
pub fn is_ack(body: &str) -> bool {
    let Ok(els) = elements(body) else { return false };
    let Some(resp) = els.iter().position(|e| e.local == "notificationsResponse" && e.ns == OUTBOUND_NS) else {
        return false;
    };
    els[resp + 1..].iter().find(|e| e.local == "Ack").is_some_and(|e| {
        e.ns == OUTBOUND_NS && e.text.trim() == "true" && e.path.last().map(String::as_str) == Some("notificationsResponse")
    })
}

/// A message ready to send.
pub(crate) struct Job {
    pub org: String,
    pub rule_id: String,
    pub endpoint: String,
    pub body: String,
    pub notes: Vec<(String, String)>,
    pub attempt: u32,
    pub duplicate: bool,
}

/// Sends one message; returns (status, acked, error).
pub(crate) async fn send(client: &reqwest::Client, job: &Job, timeout: Duration) -> (Option<u16>, bool, Option<String>) {
    let res = client
        .post(&job.endpoint)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .timeout(timeout)
        .body(job.body.clone())
        .send()
        .await;
    match res {
        Err(e) => (None, false, Some(format!("transport: {e}"))),
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            if status != 200 {
                (Some(status), false, Some(format!("HTTP {status}")))
            } else if is_ack(&text) {
                (Some(status), true, None)
            } else {
                (Some(status), false, Some("200 without a notificationsResponse Ack true".into()))
            }
        }
    }
}

/// The delivery loop: wakes on a short real-time tick or when poked, sends due messages.
pub(crate) async fn run(core: Arc<crate::sim::Core>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = core.outbound_wake.notified() => {},
            _ = tokio::time::sleep(Duration::from_millis(core.config.outbound_tick_ms.max(1))) => {},
        }
        let jobs = core.take_due_outbound();
        if jobs.is_empty() {
            continue;
        }
        let mut set = tokio::task::JoinSet::new();
        for job in jobs {
            let core = core.clone();
            set.spawn(async move {
                let timeout = Duration::from_millis(core.config.outbound_timeout_ms);
                let result = send(&core.http, &job, timeout).await;
                core.finish_outbound(job, result);
            });
        }
        while set.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_must_be_exact() {
        let ok = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#;
        assert!(is_ack(ok));
        assert!(is_ack(
            &ok.replace(
                "<notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>",
                "<o:notificationsResponse xmlns:o=\"http://soap.sforce.com/2005/09/outbound\"><o:Ack>"
            )
            .replace("</Ack></notificationsResponse>", "</o:Ack></o:notificationsResponse>")
        ));
        assert!(!is_ack(&ok.replace("<Ack>true", "<Ack>false")));
        assert!(!is_ack(&ok.replace("2005/09/outbound", "2005/09/other")));
        assert!(!is_ack(""));
        assert!(!is_ack("OK"));
    }

    #[test]
    fn message_shape() {
        let notes = [NoteBody {
            id: "04l5g00000ABCDEAA1",
            fields: vec![
                ("Id".into(), Value::String("0035g00000QRSTUAA2".into())),
                ("Phone".into(), Value::Null),
                ("Survey_Opt_In__c".into(), Value::Bool(true)),
                ("SystemModstamp".into(), Value::String("2026-03-01T10:15:00.000+0000".into())),
            ],
        }];
        let m = soap_message("00D5g000000AbCdEAK", "04k5g000000XyZaAAB", None, "https://x", "Contact", &notes);
        assert!(m.contains("<SessionId xsi:nil=\"true\"/>"));
        assert!(m.contains("<sf:Phone xsi:nil=\"true\"/>"));
        assert!(m.contains("<sf:SystemModstamp>2026-03-01T10:15:00.000Z</sf:SystemModstamp>"));
        assert!(m.contains("/services/Soap/u/64.0/00D5g000000AbCd<"));
        assert!(m.contains("xsi:type=\"sf:Contact\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\""));
        let els = elements(&m).expect("well-formed");
        assert!(els.iter().any(|e| e.local == "notifications" && e.ns == OUTBOUND_NS));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = OutboundState::default();
        assert_eq!(s.backoff(1), Duration::from_secs(15));
        assert_eq!(s.backoff(2), Duration::from_secs(30));
        assert_eq!(s.backoff(20), Duration::from_secs(7200));
    }
}
