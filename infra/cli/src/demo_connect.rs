//! The `connect` flow of `forcelink demo`: a sync user's invitation connects a production org
//! (the simulator auto-approves the invited login), `forcelink connect`'s URL connects a
//! sandbox (login and Allow on the simulator's page), the REST client verifies both, an expired
//! session is refreshed once for 20 concurrent callers with the rotated refresh token stored,
//! and "Login with Salesforce" hands the platform a signed login token.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use forcelink::Deps;
use forcelink::domain::DirectoryUser;
use forcelink::domain::record;
use forcelink::ports::Cond;
use forcelink::salesforce::{SalesforceClient, connections, session, sso};
use http::StatusCode;

use crate::demo::Demo;

const SITE: &str = "demo-connect";
const CLIENT_ID: &str = sfsim::DEFAULT_CLIENT_ID;
const CLIENT_SECRET: &str = sfsim::DEFAULT_CLIENT_SECRET;

/// Runs the flow.
pub async fn flow(d: &Demo) -> anyhow::Result<()> {
    let uat = sfsim::OrgSpec {
        name: "Acme UAT".into(),
        my_domain: "acme--uat".into(),
        sandbox: true,
        install_apps: vec![CLIENT_ID.into()],
        users: vec![sfsim::UserSpec { username: "admin@acme.example.uat".into(), ..sfsim::UserSpec::default() }],
        ..sfsim::OrgSpec::default()
    };
    let sim = sfsim::Sim::start(sfsim::SimConfig { orgs: vec![uat], ..sfsim::SimConfig::default() })
        .await
        .context("cannot start the simulator")?;
    let acme = sim.org("acme")?;
    d.step(format!("simulated Salesforce: {} (production, {}) and Acme UAT (sandbox)", acme.name, acme.id));

    // A stack of its own whose login hosts are the simulator's.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let vars = [
        ("FORCELINK_PUBLIC_URL", base.clone()),
        ("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string()),
        ("FORCELINK_SF_CLIENT_ID", CLIENT_ID.into()),
        ("FORCELINK_SF_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("FORCELINK_SF_LOGIN_URL", sim.https_url()),
        ("FORCELINK_SF_SANDBOX_URL", format!("{}/test.salesforce.com", sim.https_url())),
    ];
    let deps = Arc::new(Deps::from_settings(d.settings("connect", &vars)?).await?);
    let server = tokio::spawn(axum::serve(listener, crate::dev::router(deps.clone())).into_future());
    let result = run(d, &sim, &deps, &base).await;
    server.abort();
    result
}

async fn run(d: &Demo, sim: &sfsim::SimHandle, deps: &Deps, base: &str) -> anyhow::Result<()> {
    let toml = format!(
        r#"[[sites]]
id = "{SITE}"
name = "Connect demo"
platform_url = "https://demo.platform.example"
platform_sso_url = "https://demo.platform.example/sso/salesforce"
admin_email = "admin@demo.example"
default_connection = "production"

[[sites.connections]]
name = "production"

[[sites.connections]]
name = "uat"
environment = "sandbox"
"#
    );
    forcelink::config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "demo-connect.toml", &toml).await?;
    let ca = reqwest::Certificate::from_pem(sim.ca_pem()?.as_bytes())?;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).add_root_certificate(ca).build()?;
    let acme = sim.org("acme")?;

    // 1. Invitation: email → link → Salesforce (auto-approved for the invited user) → callback.
    let (_, link) = connections::invite(deps, SITE, Some("production"), Some("admin@acme.example")).await?;
    d.step(format!("invitation emailed to admin@acme.example: {}/oauth/invite/…", base));
    let start = browser.get(&link).send().await?;
    ensure!(start.status() == StatusCode::FOUND, "invitation link answered {}", start.status());
    let authorize = location(&start)?;
    let cookie = binding_cookie(&start)?;
    ensure!(authorize.contains("code_challenge_method=S256"), "no PKCE in {authorize}");
    d.step("invitation → 302 to Salesforce's authorize page (state + PKCE S256, state bound to this browser by a __Host- cookie)");
    let back = location(&browser.get(&authorize).send().await?)?;
    let unbound = browser.get(&back).send().await?;
    ensure!(unbound.status() == StatusCode::FORBIDDEN, "a callback without the browser's cookie answered {}", unbound.status());
    d.step("the same callback in another browser (no cookie) → 403, nothing changed");
    let page = browser.get(&back).header("cookie", &cookie).send().await?;
    ensure!(page.status() == StatusCode::OK, "callback answered {}", page.status());
    let text = page.text().await?;
    ensure!(text.contains(&acme.id) && text.contains("admin@acme.example"), "the page does not name org and user");
    d.step(format!("callback: \"Salesforce connected\" page naming org {} and admin@acme.example", acme.id));

    // 2. `forcelink connect` URL for the sandbox: login and Allow on Salesforce's page.
    let url = connections::connect_url(deps, SITE, Some("uat")).await?;
    let start = browser.get(&url).send().await?;
    let authorize = location(&start)?;
    let cookie = binding_cookie(&start)?;
    let parsed = url::Url::parse(&authorize)?;
    let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    form.push(("username".into(), "admin@acme.example.uat".into()));
    form.push(("action".into(), "approve".into()));
    let post = authorize.split('?').next().unwrap_or_default().to_string();
    let back = location(&browser.post(&post).form(&form).send().await?)?;
    let page = browser.get(&back).header("cookie", &cookie).send().await?;
    ensure!(page.status() == StatusCode::OK, "sandbox callback answered {}", page.status());
    d.step("forcelink connect SITE --connection uat: sandbox login and Allow → connected");
    let again = browser.get(&url).send().await?;
    ensure!(again.status() == StatusCode::GONE, "a used connect ticket answered {}", again.status());
    let anonymous = browser.get(format!("{base}/oauth/start?site={SITE}&connection=uat")).send().await?;
    ensure!(anonymous.status() == StatusCode::FORBIDDEN, "an anonymous start answered {}", anonymous.status());
    d.step("the used ticket → 410; /oauth/start without a ticket → 403");

    // 3. Verify: identity and a query through the REST client.
    let sf = SalesforceClient::for_site(deps, SITE, None).await?;
    let who = sf.identity().await?;
    let users = sf.query_records("SELECT Id, Username FROM User").await?;
    let (used, max) = sf.api_usage().unwrap_or_default();
    d.step(format!("verified: identity {} · {} users by SOQL · API usage {used}/{max}", who.username, users.len()));
    let uat = SalesforceClient::new(deps, SITE, "uat").identity().await?;
    d.step(format!("verified: sandbox identity {}", uat.username));

    // 4. Refresh: sessions expire; 20 concurrent callers; one refresh, rotated token stored.
    let before = session::open_tokens(deps.keys.as_ref(), &session::load(deps, SITE, "production").await?.record).await?;
    sim.expire_sessions(&acme.id)?;
    sim.reset_calls(&acme.id)?;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let sf = sf.clone();
        tasks.push(tokio::spawn(async move { sf.get_json::<serde_json::Value>("limits").await }));
    }
    for t in tasks {
        t.await??;
    }
    let refreshes = sim.calls(&acme.id)?.get("oauth_token").copied().unwrap_or(0);
    ensure!(refreshes == 1, "{refreshes} refreshes for 20 callers");
    let after = session::open_tokens(deps.keys.as_ref(), &session::load(deps, SITE, "production").await?.record).await?;
    ensure!(after.refresh_token != before.refresh_token, "the rotated refresh token was not stored");
    d.step("sessions expired: 20 concurrent calls → 401 → exactly 1 refresh; rotated refresh token sealed in the store");

    // 5. Login with Salesforce: a directory user by Salesforce id → the platform's SSO URL.
    let ana = acme.users.iter().find(|u| u.username == "ana@acme.example").context("no ana in the simulator")?;
    let person = DirectoryUser {
        site: SITE.into(),
        id: "u-ana".into(),
        email: "ana@acme.example".into(),
        first_name: "Ana".into(),
        last_name: "Silva".into(),
        salesforce_id: Some(ana.id.clone()),
        salesforce_org_id: Some(acme.id.clone()),
        active: true,
        tags: BTreeMap::from([("salesforce_user".to_string(), "true".to_string())]),
        manager_id: None,
        ui: None,
    };
    record::save(deps.store.as_ref(), &person, Cond::Always).await?;
    let start = browser.get(format!("{base}/sso/login?site={SITE}&next=/surveys/1")).send().await?;
    let authorize = location(&start)?;
    let cookie = binding_cookie(&start)?;
    let back = location(&browser.get(format!("{authorize}&login_hint=ana@acme.example")).send().await?)?;
    let done = browser.get(&back).header("cookie", &cookie).send().await?;
    ensure!(done.status() == StatusCode::OK, "SSO callback answered {}", done.status());
    let page = done.text().await?;
    let (action, fields) = sso::read_form_post(&page).context("the SSO page holds no form_post")?;
    let token = fields.get("token").context("no token field")?;
    let jwks: serde_json::Value = browser.get(format!("{base}/.well-known/jwks.json")).send().await?.json().await?;
    let platform = url::Url::parse(&action)?;
    let claims = sso::verify_login(&jwks, token, base, &forcelink::jws::origin(&platform), deps.clock.epoch_secs())?;
    ensure!(claims.sub == "u-ana" && claims.next == "/surveys/1", "logged in as {} to {}", claims.sub, claims.next);
    d.step(format!(
        "Login with Salesforce: ana → a page that POSTs to {action} an EdDSA token (sub u-ana, aud {}, valid {} s), verified with /.well-known/jwks.json",
        claims.aud,
        sso::LOGIN_TOKEN_SECS
    ));

    let warnings = forcelink::salesforce::check_credentials(deps).await;
    if !warnings.is_empty() {
        bail!("unexpected credential warnings: {warnings:?}");
    }
    d.step("credential check: no warnings");
    Ok(())
}

/// The `name=value` of the cookie that binds a flow's state to the browser.
fn binding_cookie(resp: &reqwest::Response) -> anyhow::Result<String> {
    let set = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).context("no binding cookie")?;
    Ok(set.split(';').next().unwrap_or_default().to_string())
}

fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    ensure!(resp.status() == StatusCode::FOUND, "expected a redirect, got {}", resp.status());
    Ok(resp.headers().get("location").and_then(|v| v.to_str().ok()).context("redirect without a location")?.to_string())
}
