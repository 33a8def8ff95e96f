//! Credentials that never lapse silently, on both backends: `forcelink status` only reads (no
//! token call, no email, no write); the scheduled check (roster-sync's wake-up, hourly; and
//! `forcelink dev`'s loop) keeps idle refresh tokens alive before the configured idle expiry
//! and sends each expiry-date warning once; every way Salesforce refuses a credential, driven
//! through the simulator, is named in the connection, in `status` and in the admin's email
//! with its fix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use forcelink::domain::connection::{ConnectionStatus, CredentialProblem};
use forcelink::domain::{Connection, keys};
use forcelink::ports::ManualClock;
use forcelink::salesforce::{SalesforceClient, SfError, WarningKind, session};
use forcelink_stack::{Backend, CLIENT_ID, Stack, both_backends};
use serde_json::{Map, json};

const BIN: &str = env!("CARGO_BIN_EXE_forcelink");

/// `acme` with an admin to warn and a connection whose credential expires on a set date.
fn site(expires_on: time::Date) -> String {
    format!(
        r#"
[[sites]]
id = "acme"
name = "Acme"
platform_url = "https://acme.platform.example"
admin_email = "lms-admin@acme.example"
default_connection = "production"

[[sites.connections]]
name = "production"
environment = "production"
expires_on = {expires_on}
warn_days = 14
"#
    )
}

/// Refresh tokens expire after 15 idle days here: keep-alive from day 10, warning from day 11.
const IDLE_DAYS: &str = "15";

struct Env {
    stack: Stack,
    clock: Arc<ManualClock>,
    org: String,
}

impl std::ops::Deref for Env {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

async fn env(backend: Backend) -> Env {
    let now = time::OffsetDateTime::now_utc();
    let toml = site(now.date() + time::Duration::days(10));
    let mut stack = Stack::start_with(backend, sfsim::SimConfig::default(), &[("FORCELINK_SF_REFRESH_IDLE_DAYS", IDLE_DAYS)], &toml).await;
    let clock = Arc::new(ManualClock::at(now));
    stack.deps.clock = clock.clone();
    stack.connect("acme", "production", "admin@acme.example").await;
    let org = stack.sim.org("acme").unwrap().id;
    Env { stack, clock, org }
}

impl Env {
    async fn connection(&self) -> Connection {
        session::load(&self.deps, "acme", "production").await.unwrap().record
    }

    async fn set_idle(&self, days: i64) {
        let at = time::OffsetDateTime::now_utc() - time::Duration::days(days);
        session::update_connection(&self.deps, "acme", "production", |c| c.last_refreshed_at = Some(at)).await.unwrap();
    }

    fn token_calls(&self) -> u64 {
        self.sim.calls(&self.org).unwrap().get("oauth_token").copied().unwrap_or(0)
    }

    /// One scheduled roster-sync wake-up.
    async fn wake(&self) {
        let mut event = EventBridgeEvent::default();
        event.detail_type = "Scheduled Event".into();
        roster_sync::handle_until(&self.deps, event, Instant::now() + Duration::from_secs(120)).await.unwrap();
    }

    fn advance(&self, hours: u64) {
        self.clock.advance(Duration::from_secs(hours * 3_600));
    }

    fn warnings_sent(&self) -> Vec<String> {
        self.outbox().into_iter().filter(|m| m.contains("needs attention")).collect()
    }

    /// `forcelink status acme` as an operator runs it; its stdout.
    fn status(&self) -> String {
        let out = forcelink_stack::dev::command(std::path::Path::new(BIN), self.vars()).args(["status", "acme"]).output().unwrap();
        assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Makes Salesforce see the connection again: sessions expired, one REST call.
    async fn call(&self) -> Result<serde_json::Value, SfError> {
        self.sim.expire_sessions(&self.org).unwrap();
        SalesforceClient::new(&self.deps, "acme", "production").get_json("limits").await
    }
}

async fn status_only_reads_and_the_schedule_keeps_tokens_alive(backend: Backend) {
    let e = env(backend).await;
    e.set_idle(12).await;
    let (calls, stored, tokens) = (e.sim.calls(&e.org).unwrap(), e.connection().await, e.token_calls());

    let shown = e.status();
    assert!(shown.contains("WARNING [idle_refresh_token]"), "{shown}");
    assert!(shown.contains("WARNING [expires_soon]"), "{shown}");
    assert_eq!(e.sim.calls(&e.org).unwrap(), calls, "status calls Salesforce not at all");
    assert!(e.outbox().is_empty(), "status emails nobody");
    assert_eq!(e.connection().await, stored, "status writes nothing");

    // The schedule: a keep-alive refresh (12 idle days ≥ 10) and the expiry warning, once.
    e.wake().await;
    assert_eq!(e.token_calls(), tokens + 1, "one keep-alive refresh");
    let conn = e.connection().await;
    assert!(conn.last_refreshed_at.unwrap() > stored.last_refreshed_at.unwrap());
    let sent = e.warnings_sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("lms-admin@acme.example") && sent[0].contains("expires on"), "{}", sent[0]);
    assert!(!sent[0].contains("idle"), "kept alive, so no idle warning: {}", sent[0]);
    assert!(!e.status().contains("idle_refresh_token"));

    // Within the hour the check does not run again; after it, nothing new to say.
    e.wake().await;
    e.advance(2);
    e.wake().await;
    assert_eq!(e.token_calls(), tokens + 1);
    // A week later the token is still fresh enough and the expiry warning is not repeated.
    e.advance(8 * 24);
    e.wake().await;
    assert_eq!(e.warnings_sent().len(), 1, "each expiry-date warning once");
    assert_eq!(e.token_calls(), tokens + 1, "8 idle days: no keep-alive yet");
    // Past the date: the `expired` warning, once; and 10 idle days: another keep-alive.
    e.advance(3 * 24);
    e.wake().await;
    e.advance(2);
    e.wake().await;
    let sent = e.warnings_sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].contains("has passed"), "{}", sent[1]);
    assert_eq!(e.token_calls(), tokens + 2, "kept alive again after 10 idle days");
}

async fn dev_runs_the_credential_check_on_its_loop(backend: Backend) {
    let e = env(backend).await;
    e.set_idle(12).await;
    let before = e.token_calls();
    let _dev = e.start_dev(std::path::Path::new(BIN), &["--sync-every", "1"]);
    let started = Instant::now();
    while e.token_calls() == before || e.warnings_sent().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "forcelink dev kept the token alive and warned within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(e.token_calls(), before + 1);
}

/// Each named refusal: Salesforce is made to refuse as it does, then a call, then the schedule.
async fn each_refusal_is_named_with_its_fix(backend: Backend) {
    let e = env(backend).await;
    let admin = e.sim.org("acme").unwrap().users.into_iter().find(|u| u.username == "admin@acme.example").unwrap().id;
    let cases: [(&str, CredentialProblem, WarningKind, &str); 5] = [
        ("uninstalled", CredentialProblem::AppNotInstalled, WarningKind::AppNotInstalled, "not installed in the Salesforce org"),
        ("ip", CredentialProblem::IpRestricted, WarningKind::IpRestricted, "trusted IP ranges"),
        ("inactive", CredentialProblem::UserInactive, WarningKind::UserInactive, "deactivated or frozen"),
        ("revoked", CredentialProblem::TokenRevoked, WarningKind::TokenRevoked, "revoked"),
        ("api", CredentialProblem::ApiDisabled, WarningKind::ApiDisabled, "API Enabled"),
    ];
    for (i, (how, problem, kind, fix)) in cases.into_iter().enumerate() {
        match how {
            "uninstalled" => e.sim.uninstall_app(&e.org, CLIENT_ID).unwrap(),
            "ip" => e.sim.set_faults(&e.org, sfsim::Faults { ip_restricted: true, ..Default::default() }).unwrap(),
            "inactive" => {
                let fields: Map<_, _> = [("IsActive".to_string(), json!(false))].into_iter().collect();
                e.sim.update_record(&e.org, "User", &admin, fields).unwrap();
            }
            "revoked" => {
                e.sim.revoke_refresh_tokens(&e.org).unwrap();
            }
            _ => e.sim.set_faults(&e.org, sfsim::Faults { api_disabled: true, ..Default::default() }).unwrap(),
        }
        let err = e.call().await.unwrap_err();
        let conn = e.connection().await;
        assert_eq!(conn.health.problem, Some(problem), "{how}: {err:?}");
        let held = problem != CredentialProblem::ApiDisabled;
        let want = if held { ConnectionStatus::NeedsReauth } else { ConnectionStatus::Connected };
        assert_eq!(conn.status, want, "{how}");

        let shown = e.status();
        let label = serde_json::to_value(kind).unwrap();
        assert!(shown.contains(&format!("WARNING [{}]", label.as_str().unwrap())) && shown.contains(fix), "{how}: {shown}");
        e.advance(2);
        e.wake().await;
        let sent = e.warnings_sent();
        let last = sent.last().unwrap();
        assert_eq!(sent.len(), i + 1, "{how}: one email per refusal");
        assert!(last.contains(fix), "{how}: {last}");

        // Put Salesforce right and authorize again: the problem is gone.
        e.sim.set_faults(&e.org, sfsim::Faults::default()).unwrap();
        e.sim.install_app(&e.org, CLIENT_ID).unwrap();
        let fields: Map<_, _> = [("IsActive".to_string(), json!(true))].into_iter().collect();
        e.sim.update_record(&e.org, "User", &admin, fields).unwrap();
        e.connect("acme", "production", "admin@acme.example").await;
        assert_eq!(e.connection().await.health.problem, None, "{how}: a new authorization clears it");
        e.call().await.unwrap();
    }
}

/// An instance migration: the refresh answer names a new `instance_url`; forcelink follows it
/// and tells the admin what still names the old host.
async fn an_instance_move_is_followed_and_named(backend: Backend) {
    let e = env(backend).await;
    let before = e.connection().await.instance_url.unwrap();
    e.sim.move_instance(&e.org, "acme2.my.salesforce.com").unwrap();
    e.call().await.unwrap();
    let conn = e.connection().await;
    assert!(conn.instance_url.as_deref().unwrap().ends_with("/acme2.my.salesforce.com"), "{conn:?}");
    assert_eq!(conn.health.instance_changed.as_ref().unwrap().from, before);
    assert!(e.status().contains("WARNING [instance_moved]"));
    e.call().await.unwrap();
    e.wake().await;
    assert!(e.warnings_sent().iter().any(|m| m.contains("instance migration") && m.contains("allow-lists")));
    // The turn of the check is one item, not one per site.
    assert!(e.deps.store.get(keys::CREDENTIAL_CHECK_PK, keys::CREDENTIAL_CHECK_SK).await.unwrap().is_some());
}

both_backends!(
    status_only_reads_and_the_schedule_keeps_tokens_alive,
    dev_runs_the_credential_check_on_its_loop,
    each_refusal_is_named_with_its_fix,
    an_instance_move_is_followed_and_named,
);
