//! Test fixtures: a harness stack (`forcelink_stack::Stack`: the simulated org, on the embedded
//! backends or on moto) with a site with an export mapping, a connection with the simulator's
//! tokens, and an in-process pump that feeds the handler from the export queue as
//! `forcelink dev` does.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use forcelink::ports::Receive;
use forcelink::{Deps, Settings};

pub const SITE: &str = "acme";

pub use forcelink_stack::Backend;

/// The stack under test and its org.
pub struct Stack {
    pub stack: forcelink_stack::Stack,
    pub org: sfsim::OrgInfo,
}

impl std::ops::Deref for Stack {
    type Target = forcelink_stack::Stack;
    fn deref(&self) -> &forcelink_stack::Stack {
        &self.stack
    }
}

/// Starts the simulator (Bulk jobs take 200 ms) and a stack on `backend`, applies `toml` (a
/// site named `acme`).
pub async fn stack(backend: Backend, toml: &str) -> Stack {
    stack_with(backend, toml, sfsim::SimConfig { bulk_delay_ms: 200, ..sfsim::SimConfig::default() }).await
}

/// As [`stack`] with a simulator configuration.
pub async fn stack_with(backend: Backend, toml: &str, config: sfsim::SimConfig) -> Stack {
    let stack = forcelink_stack::Stack::start_with(backend, config, &[("FORCELINK_QUEUE_MAX_RECEIVES", "8")], toml).await;
    let org = stack.sim.org("acme").expect("org");
    Stack { stack, org }
}

/// Opens the stack these settings name (a child process's view).
pub async fn open(vars: &[(String, String)]) -> Deps {
    let settings = Settings::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("settings");
    Deps::from_settings(settings).await.expect("deps")
}

/// Connects `connection` to the simulator's `acme` org as its admin.
pub async fn connect(s: &Stack, connection: &str) {
    s.connect(SITE, connection, "admin@acme.example").await;
}

/// One receive-handle-delete round on the embedded queue; returns the messages received.
pub async fn pump_once(deps: &Deps, tuning: &export_pusher::Tuning) -> usize {
    let batch = deps.queue.receive(Receive { visibility: Some(Duration::from_secs(30)), ..Receive::default() }).await.expect("receive");
    if batch.is_empty() {
        return 0;
    }
    let response = export_pusher::handle_with(deps, tuning, forcelink::queue_feed::sqs_event(&batch)).await;
    forcelink::queue_feed::settle(deps.queue.as_ref(), &batch, &response, None).await;
    batch.len()
}

/// The `Learning_Result__c` records in Salesforce as External Id → score; panics (naming
/// `what`) if a key has two records.
pub fn scores_by_key(s: &Stack, what: &str) -> HashMap<String, f64> {
    let records = s.sim.records(&s.org.id, "Learning_Result__c").expect("records");
    let mut by_key: HashMap<String, f64> = HashMap::with_capacity(records.len());
    for r in &records {
        let key = r.get("External_Id__c").and_then(|v| v.as_str()).expect("key").to_string();
        let score = r.get("Score__c").and_then(|v| v.as_f64()).expect("score");
        assert!(by_key.insert(key.clone(), score).is_none(), "{what}: duplicate record for {key}");
    }
    by_key
}

/// Knobs for tests: quick retries and a short pause.
pub fn quick() -> export_pusher::Tuning {
    export_pusher::Tuning {
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
        attempt_pause: Duration::from_millis(5),
        limit_pause: Duration::from_secs(2),
        bulk_poll: Duration::from_millis(100),
        max_receives: 8,
        ..export_pusher::Tuning::default()
    }
}

/// An event of kind `result`.
pub fn result_event(id: &str, at: &str, score: f64) -> serde_json::Value {
    serde_json::json!({"schema": "forcelink.event/v1", "site": SITE, "kind": "result", "id": id, "occurred_at": at,
        "fields": {"score": score, "course": format!("course {id}"), "completed_at": at}})
}

/// The site configuration used by the tests: `acme` with a mapping of `result` events to
/// `Learning_Result__c` upserts.
pub static TOML: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("{}{EXPORT}", forcelink_stack::fixtures::ACME));

const EXPORT: &str = r#"
[[sites.exports]]
kind = "result"
object = "Learning_Result__c"
external_id_field = "External_Id__c"
fields = { Score__c = "{score}", Course__c = "{course}", Completed_At__c = { from = "completed_at", format = "datetime" }, Completed__c = { constant = true } }
"#;
