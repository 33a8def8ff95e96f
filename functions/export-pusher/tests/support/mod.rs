//! Test fixtures: a simulated org, embedded backends in a temporary directory, a site with an
//! export mapping, a connection authorized through the real OAuth flow against the simulator,
//! and an in-process pump that feeds the handler from the embedded queue as `forcelink dev` does.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use forcelink::domain::{Connection, ConnectionStatus, keys, record};
use forcelink::ports::{Cond, Receive};
use forcelink::salesforce::oauth::{self, OAuthHttp};
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::{Deps, Settings};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, TokenResponse};

pub const SITE: &str = "acme";

/// The stack under test.
pub struct Stack {
    pub sim: sfsim::SimHandle,
    pub deps: Deps,
    pub org: sfsim::OrgInfo,
    /// The settings as environment variables (a child process opens the same stack with them).
    pub vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Stack {
    /// The embedded backends' data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Starts the simulator and embedded backends, applies `toml` (a site named `acme`).
pub async fn stack(toml: &str) -> Stack {
    stack_with(toml, sfsim::SimConfig { bulk_delay_ms: 200, ..sfsim::SimConfig::default() }).await
}

/// As [`stack`] with a simulator configuration.
pub async fn stack_with(toml: &str, config: sfsim::SimConfig) -> Stack {
    let sim = sfsim::Sim::start(config).await.expect("sim");
    let org = sim.org("acme").expect("org");
    let dir = tempfile::tempdir().expect("tempdir");
    let vars: Vec<(String, String)> = [
        ("FORCELINK_BACKEND", "embedded".to_string()),
        ("FORCELINK_DATA_DIR", dir.path().display().to_string()),
        ("FORCELINK_PUBLIC_URL", "http://127.0.0.1:9".into()),
        ("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string()),
        ("FORCELINK_SF_LOGIN_URL", sim.https_url()),
        ("FORCELINK_SF_CLIENT_ID", "3MVG9sfsim.DefaultConsumerKey.forcelink".into()),
        ("FORCELINK_SF_CLIENT_SECRET", "SFSIMSECRET0123456789".into()),
        ("FORCELINK_QUEUE_MAX_RECEIVES", "8".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let deps = open(&vars).await;
    forcelink::config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "test.toml", toml).await.expect("apply");
    Stack { sim, deps, org, vars, dir }
}

/// Opens the embedded stack these settings name.
pub async fn open(vars: &[(String, String)]) -> Deps {
    let settings = Settings::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("settings");
    Deps::from_settings(settings).await.expect("deps")
}

/// Authorizes `connection` through the OAuth web server flow with PKCE against the simulator
/// (auto-approve with a login hint), as the oauth-callback function records it.
pub async fn connect(s: &Stack, connection: &str) {
    let deps = &s.deps;
    let app = session::forcelink_app(deps).expect("app");
    let base = oauth::login_base(&deps.settings, &forcelink::domain::Environment::Production);
    let client = oauth::client(&deps.settings, &base, &app).expect("client");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state) =
        client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge).add_extra_param("login_hint", "admin@acme.example").url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(vec![reqwest::Certificate::from_pem(s.sim.ca_pem().expect("ca").as_bytes()).expect("pem")])
        .build()
        .expect("http");
    let resp = http.get(url.as_str()).send().await.expect("authorize");
    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).expect("redirect").to_string();
    let code = url::Url::parse(&location).expect("url").query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.to_string()).expect("code");
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&OAuthHttp(deps.http.clone()))
        .await
        .expect("token");
    assert!(oauth::verify_signature(&app.client_secret, token.extra_fields()), "token signature");
    let bundle = TokenBundle {
        access_token: token.access_token().secret().clone(),
        refresh_token: token.refresh_token().map(|r| r.secret().clone()),
    };
    let sealed = session::seal_tokens(deps.keys.as_ref(), SITE, connection, &bundle).await.expect("seal");
    let (org_id, user_id) = oauth::ids_from_identity_url(&token.extra_fields().id).expect("identity url");
    let sk = format!("{}{connection}", keys::CONNECTION_PREFIX);
    let mut conn = record::load::<Connection>(deps.store.as_ref(), &keys::site_pk(SITE), &sk).await.expect("load").expect("conn").record;
    conn.status = ConnectionStatus::Connected;
    conn.org_id = Some(org_id);
    conn.instance_url = Some(token.extra_fields().instance_url.clone());
    conn.user = Some(forcelink::domain::connection::AuthorizingUser { id: user_id, username: "admin@acme.example".into(), email: None });
    conn.tokens_sealed = Some(sealed);
    record::save(deps.store.as_ref(), &conn, Cond::Always).await.expect("save");
    deps.salesforce.forget(SITE, connection);
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

/// The site configuration used by the tests.
pub const TOML: &str = r#"
[[sites]]
id = "acme"
name = "Acme"
platform_url = "https://acme.platform.example"
default_connection = "production"

[[sites.connections]]
name = "production"

[[sites.exports]]
kind = "result"
object = "Learning_Result__c"
external_id_field = "External_Id__c"
fields = { Score__c = "{score}", Course__c = "{course}", Completed_At__c = { from = "completed_at", format = "datetime" }, Completed__c = { constant = true } }
"#;
