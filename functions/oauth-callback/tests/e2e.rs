//! oauth-callback end to end: the simulator (`sfsim`, in process, HTTPS with its own CA) and
//! the real handler on embedded backends (`Deps::from_settings` on a temp dir), over HTTP.
//! A "browser" (reqwest, no automatic redirects) clicks through: start, Salesforce's login
//! and consent page, the callback. Pages are kept in `test-artifacts/oauth-callback/` for the
//! screenshot script.

use std::collections::BTreeMap;
use std::sync::Arc;

use forcelink::domain::connection::ConnectionStatus;
use forcelink::domain::record;
use forcelink::domain::{Connection, DirectoryUser};
use forcelink::ports::Cond;
use forcelink::salesforce::session;
use forcelink::salesforce::{SalesforceClient, SfError, sso};
use forcelink::{Deps, Settings};
use http::StatusCode;
use sfsim::{OrgSpec, Sim, SimConfig, SimHandle, UserSpec};

const CLIENT_ID: &str = "3MVG9sfsim.DefaultConsumerKey.forcelink";
const CLIENT_SECRET: &str = "SFSIMSECRET0123456789";

struct World {
    sim: SimHandle,
    deps: Deps,
    dir: tempfile::TempDir,
    base: String,
    browser: reqwest::Client,
    settings: BTreeMap<String, String>,
}

fn user(name: &str) -> UserSpec {
    UserSpec { username: name.into(), first_name: Some("Sam".into()), last_name: Some("Sync".into()), ..UserSpec::default() }
}

async fn world() -> World {
    let config = SimConfig {
        orgs: vec![
            OrgSpec {
                name: "Acme UAT".into(),
                my_domain: "acme--uat".into(),
                sandbox: true,
                install_apps: vec![CLIENT_ID.into()],
                users: vec![user("admin@acme.example.uat")],
                ..OrgSpec::default()
            },
            OrgSpec {
                name: "Globex".into(),
                my_domain: "globex".into(),
                install_apps: vec![CLIENT_ID.into()],
                users: vec![user("hank@globex.example")],
                ..OrgSpec::default()
            },
        ],
        ..SimConfig::default()
    };
    let sim = Sim::start(config).await.expect("sim starts");
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let settings: BTreeMap<String, String> = [
        ("FORCELINK_DATA_DIR", dir.path().display().to_string()),
        ("FORCELINK_PUBLIC_URL", base.clone()),
        ("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string()),
        ("FORCELINK_SF_CLIENT_ID", CLIENT_ID.into()),
        ("FORCELINK_SF_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("FORCELINK_SF_LOGIN_URL", sim.https_url()),
        ("FORCELINK_SF_SANDBOX_URL", format!("{}/test.salesforce.com", sim.https_url())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let deps = deps_for(&settings).await;
    let served = Arc::new(deps.clone());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let deps = served.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let resp = oauth_callback::handle(&deps, http::Request::from_parts(parts, bytes)).await;
            let (parts, body) = resp.into_parts();
            axum::response::Response::from_parts(parts, axum::body::Body::from(body))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().unwrap().as_bytes()).unwrap();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).add_root_certificate(ca).build().unwrap();
    let w = World { sim, deps, dir, base, browser, settings };
    let toml = r#"
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

[[sites.connections]]
name = "uat"
environment = "sandbox"
"#;
    forcelink::config::apply_text(w.deps.store.as_ref(), w.deps.keys.as_ref(), "test.toml", toml).await.unwrap();
    w
}

async fn deps_for(settings: &BTreeMap<String, String>) -> Deps {
    let s = Settings::from_lookup(|k| settings.get(k).cloned()).unwrap();
    Deps::from_settings(s).await.unwrap()
}

/// What a browser ends on.
struct Landing {
    status: StatusCode,
    location: Option<String>,
    body: String,
    /// The callback URL Salesforce sent the browser to (for replays).
    callback: Option<String>,
}

impl World {
    async fn get(&self, url: &str) -> Landing {
        let resp = self.browser.get(url).send().await.unwrap();
        let status = resp.status();
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        Landing { status, location, body: resp.text().await.unwrap(), callback: None }
    }

    /// Starts at `start`, logs in at the simulator's page as `username` and approves (or
    /// denies), then follows Salesforce's redirect to the callback.
    async fn click_through(&self, start: &str, username: &str, approve: bool) -> Landing {
        let first = self.get(start).await;
        assert_eq!(first.status, StatusCode::FOUND, "start: {}", first.body);
        let authorize = first.location.unwrap();
        assert!(authorize.contains("/services/oauth2/authorize?"), "{authorize}");
        assert!(authorize.contains("code_challenge_method=S256"), "{authorize}");
        let page = self.get(&authorize).await;
        assert_eq!(page.status, StatusCode::OK, "login page: {}", page.body);
        let url = url::Url::parse(&authorize).unwrap();
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("username".into(), username.into()));
        form.push(("action".into(), if approve { "approve" } else { "deny" }.into()));
        let post = url.as_str().split('?').next().unwrap().to_string();
        let resp = self.browser.post(&post).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        let back = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(back.starts_with(&format!("{}/oauth/callback?", self.base)), "{back}");
        let mut landing = self.get(&back).await;
        landing.callback = Some(back);
        landing
    }

    fn start_url(&self, connection: &str, env: &str) -> String {
        format!("{}/oauth/start?site=acme&connection={connection}&env={env}", self.base)
    }

    async fn connection(&self, name: &str) -> Connection {
        session::load(&self.deps, "acme", name).await.unwrap().record
    }

    async fn connect_production(&self) -> Landing {
        let landing = self.click_through(&self.start_url("production", "production"), "admin@acme.example", true).await;
        assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
        landing
    }
}

/// Keeps a page for the screenshot script (`infra/screenshots.sh`).
fn keep(name: &str, body: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts/oauth-callback");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.html")), body);
}

fn assert_no_secrets(conn: &Connection, body: &str) {
    let stored = serde_json::to_string(conn).unwrap();
    for secret in [CLIENT_SECRET, "5Aep861"] {
        assert!(!stored.contains(secret), "stored record holds {secret}");
        assert!(!body.contains(secret), "page holds {secret}");
    }
}

#[tokio::test]
async fn production_and_sandbox_connect_and_show_org_and_user() {
    let w = world().await;
    let landing = w.connect_production().await;
    keep("connected", &landing.body);
    let acme = w.sim.org("acme").unwrap();
    assert!(landing.body.contains(&acme.id), "names the org: {}", landing.body);
    assert!(landing.body.contains("admin@acme.example"), "names the user");
    let conn = w.connection("production").await;
    assert_eq!(conn.status, ConnectionStatus::Connected);
    assert_eq!(conn.org_id.as_deref(), Some(acme.id.as_str()));
    assert_eq!(conn.user.as_ref().unwrap().username, "admin@acme.example");
    assert!(conn.last_verified_at.is_some() && conn.instance_url.is_some());
    assert_no_secrets(&conn, &landing.body);

    let uat = w.click_through(&w.start_url("uat", "sandbox"), "admin@acme.example.uat", true).await;
    assert_eq!(uat.status, StatusCode::OK, "{}", uat.body);
    let sandbox = w.sim.org("acme--uat").unwrap();
    assert_eq!(w.connection("uat").await.org_id.as_deref(), Some(sandbox.id.as_str()));

    // A production user cannot log in through the sandbox host.
    let wrong = w.click_through(&w.start_url("uat", "sandbox"), "admin@acme.example", true).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    // The REST client works with the stored tokens, and identity answers.
    let sf = SalesforceClient::for_site(&w.deps, "acme", None).await.unwrap();
    let records = sf.query_records("SELECT Id, Username FROM User").await.unwrap();
    assert!(records.len() >= 4);
    assert!(sf.api_usage().is_some());
    assert_eq!(sf.identity().await.unwrap().username, "admin@acme.example");
}

#[tokio::test]
async fn denial_and_replay_and_bad_state_change_nothing() {
    let w = world().await;
    let denied = w.click_through(&w.start_url("production", "production"), "admin@acme.example", false).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.body.contains("Access was not allowed"));
    keep("denied", &denied.body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);

    let ok = w.connect_production().await;
    let before = w.connection("production").await;
    let replay = w.get(ok.callback.as_deref().unwrap()).await;
    assert_eq!(replay.status, StatusCode::CONFLICT, "{}", replay.body);
    keep("replayed", &replay.body);
    assert_eq!(w.connection("production").await, before, "a replay changes nothing");

    let unknown = w.get(&format!("{}/oauth/callback?code=x&state=nope", w.base)).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    keep("expired-state", &unknown.body);
    let missing = w.get(&format!("{}/oauth/callback?code=x", w.base)).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let error = w.get(&format!("{}/oauth/callback?error=server_error", w.base)).await;
    assert_eq!(error.status, StatusCode::BAD_REQUEST, "no state: nothing to bind the error to");
    let bad_env = w.get(&format!("{}/oauth/start?site=acme&connection=production&env=https://evil.example", w.base)).await;
    assert_eq!(bad_env.status, StatusCode::BAD_REQUEST);
    keep("bad-environment", &bad_env.body);
    assert_eq!(w.connection("production").await, before);
}

#[tokio::test]
async fn an_org_mismatch_is_refused() {
    let w = world().await;
    w.connect_production().await;
    let before = w.connection("production").await;
    let other = w.click_through(&w.start_url("production", "production"), "hank@globex.example", true).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert!(other.body.contains("different Salesforce org"));
    keep("org-mismatch", &other.body);
    assert_eq!(w.connection("production").await, before);
    // The refused authorization was revoked at Salesforce.
    assert!(w.sim.calls("globex").unwrap().get("oauth_revoke").copied().unwrap_or(0) >= 1);
}

#[tokio::test]
async fn rotation_refresh_and_fifty_concurrent_callers_refresh_once() {
    let w = world().await;
    w.connect_production().await;
    let acme = w.sim.org("acme").unwrap().id;
    let first = session::open_tokens(w.deps.keys.as_ref(), &w.connection("production").await).await.unwrap();

    // Rotation: a refresh stores the new refresh token; a second refresh uses it (not the old one).
    let sf = SalesforceClient::new(&w.deps, "acme", "production");
    let _: serde_json::Value = sf.get_json("limits").await.unwrap();
    w.sim.expire_sessions(&acme).unwrap();
    let _: serde_json::Value = sf.get_json("limits").await.unwrap();
    let second = session::open_tokens(w.deps.keys.as_ref(), &w.connection("production").await).await.unwrap();
    assert_ne!(first.refresh_token, second.refresh_token, "rotated refresh token stored");
    assert_ne!(first.access_token, second.access_token);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;

    // 50 callers in 5 "Lambdas" (separate Deps: own caches, one store) after the token expires.
    let mut lambdas = vec![w.deps.clone()];
    for _ in 0..4 {
        lambdas.push(deps_for(&w.settings).await);
    }
    for d in &lambdas {
        let _: serde_json::Value = SalesforceClient::new(d, "acme", "production").get_json("limits").await.unwrap();
    }
    w.sim.expire_sessions(&acme).unwrap();
    w.sim.reset_calls(&acme).unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let d = lambdas[i % lambdas.len()].clone();
        tasks.push(tokio::spawn(async move {
            let sf = SalesforceClient::new(&d, "acme", "production");
            sf.get_json::<serde_json::Value>("limits").await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every caller succeeds");
    }
    let calls = w.sim.calls(&acme).unwrap();
    assert_eq!(calls.get("oauth_token").copied(), Some(1), "exactly one refresh: {calls:?}");
    let conn = w.connection("production").await;
    assert_eq!(conn.status, ConnectionStatus::Connected, "no lockout");
    assert_eq!(conn.health.invalid_grants, 0);
    let third = session::open_tokens(w.deps.keys.as_ref(), &conn).await.unwrap();
    assert_ne!(third.refresh_token, second.refresh_token);
    // And the family is alive: one more refresh works.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    w.sim.expire_sessions(&acme).unwrap();
    let _: serde_json::Value = sf.get_json("limits").await.unwrap();
}

#[tokio::test]
async fn revoked_refresh_token_means_needs_reauth_and_reconnect_heals() {
    let w = world().await;
    w.connect_production().await;
    let acme = w.sim.org("acme").unwrap().id;
    w.sim.revoke_refresh_tokens(&acme).unwrap();
    w.sim.expire_sessions(&acme).unwrap();
    let sf = SalesforceClient::new(&w.deps, "acme", "production");
    let err = sf.get_json::<serde_json::Value>("limits").await.unwrap_err();
    assert!(matches!(err, SfError::NeedsReauth(_)), "{err:?}");
    assert!(err.admin_hint().is_some());
    assert_eq!(w.connection("production").await.status, ConnectionStatus::NeedsReauth);
    let warnings = forcelink::salesforce::check_credentials(&w.deps).await;
    assert!(warnings.iter().any(|x| x.kind == forcelink::salesforce::WarningKind::NeedsReauth));
    let outbox = std::fs::read_dir(w.dir.path().join("outbox")).unwrap().count();
    assert_eq!(outbox, 1, "the admin was told");
    forcelink::salesforce::check_credentials(&w.deps).await;
    assert_eq!(std::fs::read_dir(w.dir.path().join("outbox")).unwrap().count(), 1, "once a week, not every check");

    w.connect_production().await;
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Connected);
    let _: serde_json::Value = sf.get_json("limits").await.unwrap();
}

#[tokio::test]
async fn invitation_connect_ticket_rename_default_and_remove() {
    let w = world().await;
    let link = forcelink::salesforce::connections::invite(&w.deps, "acme", Some("production"), "admin@acme.example").await.unwrap();
    assert!(link.starts_with(&format!("{}/oauth/invite/", w.base)));
    let mail = std::fs::read_dir(w.dir.path().join("outbox")).unwrap().next().unwrap().unwrap().path();
    assert!(std::fs::read_to_string(mail).unwrap().contains("/oauth/invite/"));
    // The simulator auto-approves with the invitation's login hint.
    let start = w.get(&link).await;
    assert_eq!(start.status, StatusCode::FOUND);
    let sf = w.get(start.location.as_deref().unwrap()).await;
    let back = sf.location.unwrap();
    let landing = w.get(&back).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    assert_eq!(w.connection("production").await.sync_user_email.as_deref(), Some("admin@acme.example"));

    let tampered = w.get(&format!("{}x", link)).await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    keep("bad-invitation", &tampered.body);

    let url = forcelink::salesforce::connections::connect_url(&w.deps, "acme", Some("uat")).await.unwrap();
    assert!(url.contains("ticket="));
    assert_eq!(w.get(&url).await.status, StatusCode::FOUND);
    let forged = url.replace("connection=uat", "connection=production");
    assert_eq!(w.get(&forged).await.status, StatusCode::BAD_REQUEST);

    use forcelink::salesforce::connections as c;
    c::rename(&w.deps, "acme", "production", "prod").await.unwrap();
    let sf = SalesforceClient::for_site(&w.deps, "acme", None).await.unwrap();
    assert_eq!(sf.connection(), "prod");
    let _: serde_json::Value = sf.get_json("limits").await.unwrap();
    c::set_default(&w.deps, "acme", "uat").await.unwrap();
    assert_eq!(SalesforceClient::for_site(&w.deps, "acme", None).await.unwrap().connection(), "uat");
    let acme = w.sim.org("acme").unwrap().id;
    assert!(c::remove(&w.deps, "acme", "prod").await.unwrap(), "revoked at Salesforce");
    assert!(w.sim.calls(&acme).unwrap().get("oauth_revoke").copied().unwrap_or(0) >= 1);
    assert!(session::load(&w.deps, "acme", "prod").await.is_err());
}

#[tokio::test]
async fn login_with_salesforce_hands_the_platform_a_token() {
    let w = world().await;
    w.connect_production().await;
    let acme = w.sim.org("acme").unwrap();
    let ana = acme.users.iter().find(|u| u.username == "ana@acme.example").unwrap();
    let person = DirectoryUser {
        site: "acme".into(),
        id: "u-ana".into(),
        email: "someone-else@acme.example".into(),
        first_name: "Ana".into(),
        last_name: "Silva".into(),
        salesforce_id: Some(ana.id.clone()),
        active: true,
        tags: BTreeMap::new(),
        manager_id: None,
        ui: None,
    };
    record::save(w.deps.store.as_ref(), &person, Cond::Always).await.unwrap();

    let landing = w.click_through(&format!("{}/sso/login?site=acme&next=/surveys/1", w.base), "ana@acme.example", true).await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    let to = url::Url::parse(landing.location.as_deref().unwrap()).unwrap();
    assert!(to.as_str().starts_with("https://acme.platform.example/sso/salesforce?"));
    let q: BTreeMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["next"], "/surveys/1");
    let claims = sso::verify_login(w.deps.keys.as_ref(), &q["token"], w.deps.clock.epoch_secs()).unwrap();
    assert_eq!((claims.user.as_str(), claims.org_id.as_str()), ("u-ana", acme.id.as_str()));

    // Not in the directory: a clear page. An open redirect attempt: refused before Salesforce.
    let ben = w.click_through(&format!("{}/sso/login?site=acme", w.base), "ben@acme.example", true).await;
    assert_eq!(ben.status, StatusCode::FORBIDDEN);
    keep("sso-unknown-person", &ben.body);
    let evil = w.get(&format!("{}/sso/login?site=acme&next=//evil.example", w.base)).await;
    assert_eq!(evil.status, StatusCode::BAD_REQUEST);
    // Another org's user is refused.
    let hank = w.click_through(&format!("{}/sso/login?site=acme", w.base), "hank@globex.example", true).await;
    assert_eq!(hank.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn token_endpoint_and_identity_failures_get_pages() {
    let w = world().await;
    // Wrong client secret: the token endpoint refuses the code.
    let mut bad = w.settings.clone();
    bad.insert("FORCELINK_SF_CLIENT_SECRET".into(), "wrong".into());
    let mut deps = deps_for(&bad).await;
    deps.store = w.deps.store.clone();
    deps.keys = w.deps.keys.clone();
    let start = oauth_callback::handle(&deps, get_req("/oauth/start?site=acme&connection=production")).await;
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    let sf = w.get(&format!("{authorize}&login_hint=admin@acme.example")).await;
    let back = url::Url::parse(sf.location.as_deref().unwrap()).unwrap();
    let page = oauth_callback::handle(&deps, get_req(&format!("/oauth/callback?{}", back.query().unwrap()))).await;
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    let body = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(!body.contains("wrong"));
    keep("token-error", &body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);
}

fn get_req(path: &str) -> forcelink::web::Request {
    http::Request::get(path).body(bytes::Bytes::new()).unwrap()
}
