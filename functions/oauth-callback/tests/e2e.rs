//! oauth-callback end to end: the simulator (`sfsim`, in process, HTTPS with its own CA) and
//! the real handler on both backends (the harness `forcelink_stack::Stack`: embedded, and moto), over HTTP.
//! A "browser" (reqwest, no automatic redirects) clicks through: start, Salesforce's login
//! and consent page, the callback. Pages are kept in `test-artifacts/oauth-callback/` for the
//! screenshot script.

mod support;

use std::collections::BTreeMap;

use forcelink::domain::DirectoryUser;
use forcelink::domain::connection::ConnectionStatus;
use forcelink::domain::record;
use forcelink::ports::Cond;
use forcelink::salesforce::session;
use forcelink::salesforce::{SalesforceClient, SfError, sso};
use http::StatusCode;

use support::*;

async fn production_and_sandbox_connect_and_show_org_and_user(backend: Backend) {
    let w = world(backend).await;
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

    let uat = w.click_through(&w.start_url("uat", "sandbox").await, "admin@acme.example.uat", true).await;
    assert_eq!(uat.status, StatusCode::OK, "{}", uat.body);
    let sandbox = w.sim.org("acme--uat").unwrap();
    assert_eq!(w.connection("uat").await.org_id.as_deref(), Some(sandbox.id.as_str()));

    // A production user cannot log in through the sandbox host.
    let wrong = w.click_through(&w.start_url("uat", "sandbox").await, "admin@acme.example", true).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    // The REST client works with the stored tokens, and identity answers.
    let sf = SalesforceClient::for_site(&w.deps, "acme", None).await.unwrap();
    let records = sf.query_records("SELECT Id, Username FROM User").await.unwrap();
    assert!(records.len() >= 4);
    assert!(sf.api_usage().is_some());
    assert_eq!(sf.identity().await.unwrap().username, "admin@acme.example");
}

async fn denial_and_replay_and_bad_state_change_nothing(backend: Backend) {
    let w = world(backend).await;
    let denied = w.click_through(&w.start_url("production", "production").await, "admin@acme.example", false).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.body.contains("Access was not allowed"));
    keep("denied", &denied.body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);

    let back = w.authorize_at(&w.start_url("production", "production").await, "admin@acme.example", true).await;
    let bound = w.jar.lock().unwrap().clone();
    assert_eq!(w.get(&back).await.status, StatusCode::OK);
    let before = w.connection("production").await;
    // The callback cleared its cookie: a replay from this browser is refused before the store…
    assert_eq!(w.get(&back).await.status, StatusCode::FORBIDDEN);
    // …and one that still holds it (Back, a stale tab) finds the state used.
    *w.jar.lock().unwrap() = bound;
    let replay = w.get(&back).await;
    assert_eq!(replay.status, StatusCode::CONFLICT, "{}", replay.body);
    keep("replayed", &replay.body);
    assert_eq!(w.connection("production").await, before, "a replay changes nothing");

    let unknown = w.get(&format!("{}/oauth/callback?code=x&state=nope", w.base)).await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN, "a state this browser did not start");
    keep("unbound-state", &unknown.body);
    let missing = w.get(&format!("{}/oauth/callback?code=x", w.base)).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let error = w.get(&format!("{}/oauth/callback?error=server_error", w.base)).await;
    assert_eq!(error.status, StatusCode::BAD_REQUEST, "no state: nothing to bind the error to");
    let bad_env = w.get(&w.start_url("production", "https://evil.example").await).await;
    assert_eq!(bad_env.status, StatusCode::BAD_REQUEST);
    keep("bad-environment", &bad_env.body);
    assert_eq!(w.connection("production").await, before);
}

async fn an_org_mismatch_is_refused(backend: Backend) {
    let w = world(backend).await;
    w.connect_production().await;
    let before = w.connection("production").await;
    let other = w.click_through(&w.start_url("production", "production").await, "hank@globex.example", true).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert!(other.body.contains("different Salesforce org"));
    keep("org-mismatch", &other.body);
    assert_eq!(w.connection("production").await, before);
    // The refused authorization was revoked at Salesforce.
    assert!(w.sim.calls("globex").unwrap().get("oauth_revoke").copied().unwrap_or(0) >= 1);
}

async fn rotation_refresh_and_fifty_concurrent_callers_refresh_once(backend: Backend) {
    let w = world(backend).await;
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
        lambdas.push(w.another_lambda().await);
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

async fn revoked_refresh_token_means_needs_reauth_and_reconnect_heals(backend: Backend) {
    let w = world(backend).await;
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
    assert!(warnings.iter().any(|x| x.kind == forcelink::salesforce::WarningKind::TokenRevoked));
    let warned = || {
        std::fs::read_dir(w.dir().join("outbox"))
            .unwrap()
            .filter(|e| !std::fs::read_to_string(e.as_ref().unwrap().path()).unwrap().contains("was just authorized"))
            .count()
    };
    assert_eq!(warned(), 1, "the admin was told");
    forcelink::salesforce::check_credentials(&w.deps).await;
    assert_eq!(warned(), 1, "once a week, not every check");

    w.connect_production().await;
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Connected);
    let _: serde_json::Value = sf.get_json("limits").await.unwrap();
}

/// A sandbox refresh: same My Domain, new org id, every token gone. The saved authorization is
/// refused (`token_revoked`); authorizing again from the refreshed sandbox is refused too (another
/// org), and recorded: `org_changed`, with how to accept it, in the warnings and the email.
async fn a_sandbox_refresh_is_named_org_changed(backend: Backend) {
    let w = world(backend).await;
    let uat = w.click_through(&w.start_url("uat", "sandbox").await, "admin@acme.example.uat", true).await;
    assert_eq!(uat.status, StatusCode::OK, "{}", uat.body);
    let old = w.connection("uat").await.org_id.unwrap();
    let new = w.sim.refresh_sandbox("acme--uat").unwrap();
    let sf = SalesforceClient::new(&w.deps, "acme", "uat");
    assert!(matches!(sf.get_json::<serde_json::Value>("limits").await.unwrap_err(), SfError::NeedsReauth(_)));
    assert_eq!(w.connection("uat").await.health.problem, Some(forcelink::domain::connection::CredentialProblem::TokenRevoked));

    let again = w.click_through(&w.start_url("uat", "sandbox").await, "admin@acme.example.uat", true).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let conn = w.connection("uat").await;
    let change = conn.health.org_changed.clone().expect("the org change is recorded");
    assert_eq!((change.from.as_str(), change.to.as_str(), conn.org_id.as_deref()), (old.as_str(), new.as_str(), Some(old.as_str())));
    let warnings = forcelink::salesforce::check_credentials(&w.deps).await;
    let org_changed = warnings.iter().find(|x| x.kind == forcelink::salesforce::WarningKind::OrgChanged).expect("an org_changed warning");
    assert!(org_changed.message.contains("forcelink connection remove acme uat"), "{}", org_changed.message);
    assert!(w.outbox().iter().any(|m| m.contains("sandbox refresh") && m.contains("expected_org_id")));
}

/// `sync_user` in the site file is who `apply` invites: once per address, recorded with the
/// time, bound to that person; the emailed link connects.
async fn the_configured_sync_user_is_invited_once(backend: Backend) {
    use forcelink::salesforce::connections::invite_sync_users;
    let w = bare_world(backend).await;
    w.apply(&SITE_TOML.replacen("environment = \"production\"", "environment = \"production\"\nsync_user = \"admin@acme.example\"", 1))
        .await;
    let sent = invite_sync_users(&w.deps, "acme").await.unwrap();
    assert_eq!(sent, vec![("acme/production".to_string(), "admin@acme.example".to_string())], "uat has no sync user");
    assert!(invite_sync_users(&w.deps, "acme").await.unwrap().is_empty(), "invited once");
    let invited = w.connection("production").await.invited.expect("the invitation is recorded");
    assert_eq!(invited.email, "admin@acme.example");
    let age = w.deps.clock.now() - invited.at;
    assert!(age >= time::Duration::ZERO && age < time::Duration::minutes(1), "invited {age} ago");
    let mails = w.outbox();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: admin@acme.example"), "{}", mails[0]);
    let start = mails[0].find(&format!("{}/oauth/invite/", w.base)).unwrap();
    let link: String = mails[0][start..].chars().take_while(|c| !c.is_whitespace()).collect();
    // The invitation is bound to the sync user: Salesforce logs them in (the hint) and it connects.
    let landing = w.click_through(&link, "admin@acme.example", true).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Connected);
    // Without a configured sync user and without an address, nobody is guessed.
    let err = forcelink::salesforce::connections::invite(&w.deps, "acme", Some("uat"), None).await.unwrap_err();
    assert!(err.to_string().contains("no sync_user"), "{err}");
}

async fn invitation_connect_ticket_rename_default_and_remove(backend: Backend) {
    let w = world(backend).await;
    let link = forcelink::salesforce::connections::invite(&w.deps, "acme", Some("production"), Some("admin@acme.example")).await.unwrap().1;
    assert!(link.starts_with(&format!("{}/oauth/invite/", w.base)));
    let mail = std::fs::read_dir(w.dir().join("outbox")).unwrap().next().unwrap().unwrap().path();
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

async fn login_with_salesforce_hands_the_platform_a_token(backend: Backend) {
    let w = world(backend).await;
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
        salesforce_org_id: Some(acme.id.clone()),
        active: true,
        tags: BTreeMap::new(),
        manager_id: None,
        ui: None,
    };
    record::save(w.deps.store.as_ref(), &person, Cond::Always).await.unwrap();

    let landing = w.click_through(&format!("{}/sso/login?site=acme&next=/surveys/1", w.base), "ana@acme.example", true).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    keep("sso-form-post", &landing.body);
    let (action, q) = form_post(&landing.body);
    assert_eq!(action, "https://acme.platform.example/sso/salesforce");
    assert_eq!(q["next"], "/surveys/1");
    assert!(landing.location.is_none(), "the token never travels in a URL");
    let jwks: serde_json::Value = w.browser.get(format!("{}/.well-known/jwks.json", w.base)).send().await.unwrap().json().await.unwrap();
    let claims = sso::verify_login(&jwks, &q["token"], &w.base, "https://acme.platform.example", w.deps.clock.epoch_secs()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.org.as_str(), claims.next.as_str()), ("u-ana", acme.id.as_str(), "/surveys/1"));
    assert!(claims.exp - claims.iat <= 120);

    // Not in the directory: a clear page. An open redirect attempt: refused before Salesforce.
    let ben = w.click_through(&format!("{}/sso/login?site=acme", w.base), "ben@acme.example", true).await;
    assert_eq!(ben.status, StatusCode::FORBIDDEN);
    keep("sso-unknown-person", &ben.body);
    for next in ["//evil.example", "/%2F%2Fevil.example", "/%5Cevil.example", "/%2e%2e/admin", "https://evil.example"] {
        let evil = w.get(&format!("{}/sso/login?site=acme&next={}", w.base, urlencode(next))).await;
        assert_eq!(evil.status, StatusCode::BAD_REQUEST, "{next}");
    }
    // Another org's user is refused.
    let hank = w.click_through(&format!("{}/sso/login?site=acme", w.base), "hank@globex.example", true).await;
    assert_eq!(hank.status, StatusCode::FORBIDDEN);
}

/// The guide's first component on its own: the tab, SSO and links with no sync user. The site
/// pins its org; nobody ever authorized the connection, which only names the login host.
async fn a_pinned_org_signs_in_without_a_sync_connection(backend: Backend) {
    let w = bare_world(backend).await;
    let acme = w.sim.org("acme").unwrap();
    // Before the pin: SSO is not set up (nothing says which org to trust).
    w.apply(&SITE_TOML).await;
    let early = w.get(&format!("{}/sso/login?site=acme", w.base)).await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{}", early.body);
    assert!(early.body.contains("org_id"), "{}", early.body);

    w.apply(
        &SITE_TOML.replace(
            "default_connection = \"production\"",
            &format!("default_connection = \"production\"\norg_id = \"{}\"", &acme.id[..15]),
        ),
    )
    .await;
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending, "no sync user ever connected");
    let ana = acme.users.iter().find(|u| u.username == "ana@acme.example").unwrap();
    let person: DirectoryUser = serde_json::from_value(serde_json::json!({
        "site": "acme", "id": "u-ana", "email": "ana@acme.example", "first_name": "Ana", "active": true,
        "salesforce_id": ana.id, "salesforce_org_id": acme.id,
    }))
    .unwrap();
    record::save(w.deps.store.as_ref(), &person, Cond::Always).await.unwrap();
    let landing = w.click_through(&format!("{}/sso/login?site=acme&next=/s/1", w.base), "ana@acme.example", true).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    let (_, q) = form_post(&landing.body);
    let jwks: serde_json::Value = w.browser.get(format!("{}/.well-known/jwks.json", w.base)).send().await.unwrap().json().await.unwrap();
    let claims = sso::verify_login(&jwks, &q["token"], &w.base, "https://acme.platform.example", w.deps.clock.epoch_secs()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.org.as_str()), ("u-ana", acme.id.as_str()));
    // Another org's user is refused: the pin, not "whoever signs in", decides.
    let hank = w.click_through(&format!("{}/sso/login?site=acme", w.base), "hank@globex.example", true).await;
    assert_eq!(hank.status, StatusCode::FORBIDDEN);
}

async fn token_endpoint_and_identity_failures_get_pages(backend: Backend) {
    let w = world(backend).await;
    // Wrong client secret: the token endpoint refuses the code.
    let deps = w.another_lambda_with(&[("FORCELINK_SF_CLIENT_SECRET", "wrong")]).await;
    let ticket = w.start_url("production", "production").await;
    let start = oauth_callback::handle(&deps, get_req(&ticket.replace(&w.base, ""), None)).await;
    let cookie = start.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    let sf = w.get(&format!("{authorize}&login_hint=admin@acme.example")).await;
    let back = url::Url::parse(sf.location.as_deref().unwrap()).unwrap();
    let page = oauth_callback::handle(&deps, get_req(&format!("/oauth/callback?{}", back.query().unwrap()), Some(&cookie))).await;
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    let body = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(!body.contains("wrong"));
    keep("token-error", &body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);
}

both_backends!(
    production_and_sandbox_connect_and_show_org_and_user,
    denial_and_replay_and_bad_state_change_nothing,
    an_org_mismatch_is_refused,
    rotation_refresh_and_fifty_concurrent_callers_refresh_once,
    revoked_refresh_token_means_needs_reauth_and_reconnect_heals,
    a_sandbox_refresh_is_named_org_changed,
    invitation_connect_ticket_rename_default_and_remove,
    the_configured_sync_user_is_invited_once,
    login_with_salesforce_hands_the_platform_a_token,
    a_pinned_org_signs_in_without_a_sync_connection,
    token_endpoint_and_identity_failures_get_pages,
);
