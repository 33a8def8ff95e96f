//! The account-takeover chain and the weaker links around it, each as the attack it stops:
//! anonymous connect, ticket replay, a forwarded invitation, concurrent callbacks, a callback
//! finished in another browser, cross-org SSO by email, `next` abuse, a forged or expired
//! platform token (checked by an independent JOSE library), and tokens in log lines.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use forcelink::domain::DirectoryUser;
use forcelink::domain::connection::ConnectionStatus;
use forcelink::domain::record;
use forcelink::ports::keyring::{KeyError, KeyRing, Sealed, Signature};
use forcelink::ports::store::{Cond, Item, Page, Query, Store, StoreError, WriteOp};
use forcelink::salesforce::sso;
use http::StatusCode;
use zeroize::Zeroizing;

use support::*;

/// A store that must not be touched.
struct Untouchable;

#[async_trait]
impl Store for Untouchable {
    async fn get(&self, _: &str, _: &str) -> Result<Option<Item>, StoreError> {
        panic!("store read")
    }
    async fn put(&self, _: Item, _: Cond) -> Result<u64, StoreError> {
        panic!("store write")
    }
    async fn delete(&self, _: &str, _: &str, _: Cond) -> Result<(), StoreError> {
        panic!("store delete")
    }
    async fn query(&self, _: &Query) -> Result<Page, StoreError> {
        panic!("store query")
    }
    async fn transact(&self, _: Vec<WriteOp>) -> Result<(), StoreError> {
        panic!("store transaction")
    }
}

#[async_trait]
impl KeyRing for Untouchable {
    async fn seal(&self, _: &[u8], _: &[u8]) -> Result<Sealed, KeyError> {
        panic!("key call: seal")
    }
    async fn open(&self, _: &Sealed, _: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        panic!("key call: open")
    }
    fn sign(&self, _: &[u8]) -> Signature {
        panic!("key call: sign")
    }
    fn verify(&self, _: &str, _: &[u8], _: &[u8]) -> bool {
        panic!("key call: verify")
    }
}

async fn an_anonymous_start_is_refused_without_store_or_key_calls(backend: Backend) {
    let w = world(backend).await;
    let mut deps = w.deps.clone();
    deps.store = Arc::new(Untouchable);
    deps.keys = Arc::new(Untouchable);
    for path in ["/oauth/start?site=acme&connection=production&env=production", "/oauth/start?site=acme", "/oauth/start"] {
        let resp = oauth_callback::handle(&deps, get_req(path, None)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(resp.headers().get("set-cookie").is_none());
    }
    // Through HTTP too: nothing changed.
    let page = w.get(&format!("{}/oauth/start?site=acme&connection=production&env=production", w.base)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    keep("anonymous-start", &page.body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);
}

async fn a_connect_ticket_works_once_even_from_two_tabs(backend: Backend) {
    let w = world(backend).await;
    let ticket = w.start_url("production", "production").await;
    // Two tabs open the same ticket; Salesforce approves both.
    let first = w.authorize_at(&ticket, "admin@acme.example", true).await;
    let second = w.authorize_at(&ticket, "admin@acme.example", true).await;
    assert_eq!(w.get(&first).await.status, StatusCode::OK);
    let before = w.connection("production").await;
    let acme = w.sim.org("acme").unwrap().id;
    let revokes = w.sim.calls(&acme).unwrap().get("oauth_revoke").copied().unwrap_or(0);
    let late = w.get(&second).await;
    assert_eq!(late.status, StatusCode::GONE, "{}", late.body);
    assert_eq!(w.connection("production").await, before, "the second callback changed nothing");
    let after = w.sim.calls(&acme).unwrap().get("oauth_revoke").copied().unwrap_or(0);
    assert_eq!(after, revokes + 1, "its token was revoked");
    // The ticket no longer starts anything.
    let again = w.get(&ticket).await;
    assert_eq!(again.status, StatusCode::GONE);
    keep("ticket-used", &again.body);
}

async fn an_invitation_works_only_for_its_person(backend: Backend) {
    let w = world(backend).await;
    let link = forcelink::salesforce::connections::invite(&w.deps, "acme", Some("production"), Some("admin@acme.example")).await.unwrap().1;
    // Forwarded to ana, who signs in as herself (not as the login hint proposes).
    let start = w.get(&link).await;
    let mut authorize = url::Url::parse(&start.location.unwrap()).unwrap();
    let pairs: Vec<(String, String)> = authorize.query_pairs().into_owned().filter(|(k, _)| k != "login_hint").collect();
    authorize.query_pairs_mut().clear().extend_pairs(pairs);
    let ana = w.get(&w.sf_login(authorize.as_str(), "ana@acme.example", true).await).await;
    assert_eq!(ana.status, StatusCode::FORBIDDEN, "{}", ana.body);
    keep("invitation-other-person", &ana.body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);
    // The invited person still can, once.
    let admin = w.click_through(&link, "admin@acme.example", true).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    assert_eq!(w.connection("production").await.user.unwrap().username, "admin@acme.example");
    assert_eq!(w.get(&link).await.status, StatusCode::GONE);
}

async fn concurrent_callbacks_for_a_pending_connection_bind_exactly_one_org(backend: Backend) {
    for round in 0..4 {
        let w = world(backend).await;
        let a = w.authorize_at(&w.start_url("production", "production").await, "admin@acme.example", true).await;
        let b = w.authorize_at(&w.start_url("production", "production").await, "hank@globex.example", true).await;
        let (ra, rb) = if round % 2 == 0 {
            tokio::join!(w.get(&a), w.get(&b))
        } else {
            let (rb, ra) = tokio::join!(w.get(&b), w.get(&a));
            (ra, rb)
        };
        let statuses = [ra.status, rb.status];
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "round {round}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 1, "round {round}: {statuses:?}");
        let winner = if ra.status == StatusCode::OK { "acme" } else { "globex" };
        let org = w.sim.org(winner).unwrap().id;
        assert_eq!(w.connection("production").await.org_id.as_deref(), Some(org.as_str()), "round {round}");
    }
}

async fn a_pinned_org_is_the_only_one_that_connects(backend: Backend) {
    let w = bare_world(backend).await;
    let acme = w.sim.org("acme").unwrap().id;
    w.apply(&SITE_TOML.replace(
        "name = \"production\"\nenvironment = \"production\"",
        &format!("name = \"production\"\nenvironment = \"production\"\nexpected_org_id = \"{}\"", &acme[..15]),
    ))
    .await;
    let hank = w.click_through(&w.start_url("production", "production").await, "hank@globex.example", true).await;
    assert_eq!(hank.status, StatusCode::CONFLICT, "{}", hank.body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);
    w.connect_production().await;
    assert_eq!(w.connection("production").await.org_id.as_deref(), Some(acme.as_str()));
}

async fn a_reauthorization_revokes_the_old_family_and_tells_the_admin(backend: Backend) {
    let w = world(backend).await;
    w.connect_production().await;
    let old = forcelink::salesforce::session::open_tokens(w.deps.keys.as_ref(), &w.connection("production").await).await.unwrap();
    w.connect_production().await;
    let outbox = w.dir().join("outbox");
    let notices = std::fs::read_dir(&outbox)
        .unwrap()
        .filter(|e| std::fs::read_to_string(e.as_ref().unwrap().path()).unwrap().contains("was just authorized"))
        .count();
    assert_eq!(notices, 2, "each authorization emailed the admin");
    // The replaced refresh token is dead at Salesforce.
    let login = forcelink::salesforce::oauth::login_base(&w.deps.settings, &forcelink::domain::connection::Environment::Production);
    let refreshed = w
        .browser
        .post(format!("{login}/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old.refresh_token.as_deref().unwrap()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST, "the old family was revoked");
}

async fn a_callback_finished_in_another_browser_is_refused(backend: Backend) {
    let w = world(backend).await;
    let callback = w.authorize_at(&w.start_url("production", "production").await, "admin@acme.example", true).await;
    // The attacker sends the victim the callback URL: the victim's browser has no binding cookie.
    let mine = w.forget_cookies();
    let victim = w.get(&callback).await;
    assert_eq!(victim.status, StatusCode::FORBIDDEN, "{}", victim.body);
    keep("other-browser", &victim.body);
    assert_eq!(w.connection("production").await.status, ConnectionStatus::Pending);
    // The state was not consumed: the browser that started can still finish.
    *w.jar.lock().unwrap() = mine;
    assert_eq!(w.get(&callback).await.status, StatusCode::OK);
}

fn person(id: &str, email: &str, sf: Option<(&str, &str)>) -> DirectoryUser {
    DirectoryUser {
        site: "acme".into(),
        id: id.into(),
        email: email.into(),
        first_name: String::new(),
        last_name: String::new(),
        salesforce_id: sf.map(|(_, u)| u.to_string()),
        salesforce_org_id: sf.map(|(o, _)| o.to_string()),
        active: true,
        tags: BTreeMap::new(),
        manager_id: None,
        ui: None,
    }
}

async fn sso_trusts_only_the_sso_org_and_the_id_pair(backend: Backend) {
    let w = bare_world(backend).await;
    w.apply(&format!("{}\n[[sites.connections]]\nname = \"partner\"\nenvironment = \"production\"\n", *SITE_TOML)).await;
    w.connect_production().await;
    let partner = w.click_through(&w.start_url("partner", "production").await, "hank@globex.example", true).await;
    assert_eq!(partner.status, StatusCode::OK, "{}", partner.body);
    let acme = w.sim.org("acme").unwrap();
    let ana = acme.users.iter().find(|u| u.username == "ana@acme.example").unwrap();
    let store = w.deps.store.as_ref();
    // A second connected org's user whose email is a directory user's.
    record::save(store, &person("u-hank", "hank@globex.example", None), Cond::Always).await.unwrap();
    // The right user id, but recorded for another org (a sandbox copies user ids).
    record::save(store, &person("u-ana", "ana@acme.example", Some(("00D000000000999AAA", &ana.id))), Cond::Always).await.unwrap();
    let sso = format!("{}/sso/login?site=acme", w.base);
    assert_eq!(w.click_through(&sso, "hank@globex.example", true).await.status, StatusCode::FORBIDDEN);
    assert_eq!(w.click_through(&sso, "ana@acme.example", true).await.status, StatusCode::FORBIDDEN);
    // By email only where the site opts in, for someone with no Salesforce id yet; then recorded.
    record::save(store, &person("u-ana", "ana@acme.example", None), Cond::Always).await.unwrap();
    assert_eq!(w.click_through(&sso, "ana@acme.example", true).await.status, StatusCode::FORBIDDEN, "no opt-in");
    w.apply(&SITE_TOML.replace("default_connection = \"production\"", "default_connection = \"production\"\nsso_match_email = true")).await;
    let landing = w.click_through(&sso, "ana@acme.example", true).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    let ana_now = DirectoryUser::load(store, "acme", "u-ana").await.unwrap().unwrap().record;
    assert_eq!((ana_now.salesforce_id.as_deref(), ana_now.salesforce_org_id.as_deref()), (Some(ana.id.as_str()), Some(acme.id.as_str())));
    // The sso_connection names which org signs in: the partner org now, and acme no longer.
    w.apply(&format!(
        "{}\n[[sites.connections]]\nname = \"partner\"\nenvironment = \"production\"\n",
        SITE_TOML.replace("default_connection = \"production\"", "default_connection = \"production\"\nsso_connection = \"partner\"")
    ))
    .await;
    assert_eq!(w.click_through(&sso, "ana@acme.example", true).await.status, StatusCode::FORBIDDEN);
}

async fn sso_pages_may_be_framed_only_by_the_sites_salesforce_origins(backend: Backend) {
    let w = bare_world(backend).await;
    w.apply(&SITE_TOML.replace(
        "default_connection = \"production\"",
        "default_connection = \"production\"\ntabs = { lightning = \"https://acme.lightning.force.com/lightning/n/Forcelink\" }",
    ))
    .await;
    w.connect_production().await;
    let acme = w.sim.org("acme").unwrap();
    let ana = acme.users.iter().find(|u| u.username == "ana@acme.example").unwrap();
    record::save(w.deps.store.as_ref(), &person("u-ana", "ana@acme.example", Some((&acme.id, &ana.id))), Cond::Always).await.unwrap();
    let back = w.authorize_at(&format!("{}/sso/login?site=acme", w.base), "ana@acme.example", true).await;
    let resp = w.browser.get(&back).header("cookie", cookie_header(&w)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("https://acme.lightning.force.com") && !csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("form-action https://acme.platform.example"), "{csp}");
    let body = resp.text().await.unwrap();
    let script = body.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
    assert!(csp.contains(&forcelink::web::csp_hash(script)), "the one inline script is allowed by its hash: {csp}");
    // A connect page may not be framed at all.
    let connect = w.browser.get(format!("{}/oauth/start", w.base)).send().await.unwrap();
    let csp = connect.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(connect.headers()["referrer-policy"], "no-referrer");
    assert!(connect.headers().contains_key("strict-transport-security"));
}

async fn a_connect_flow_never_starts_inside_a_frame(backend: Backend) {
    let w = world(backend).await;
    let ticket = w.start_url("production", "production").await;
    let framed = w.browser.get(&ticket).header("sec-fetch-dest", "iframe").send().await.unwrap();
    assert_eq!(framed.status(), StatusCode::FORBIDDEN);
    assert!(framed.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    // The ticket is still good in a window of its own.
    assert_eq!(w.get(&ticket).await.status, StatusCode::FOUND);
}

fn cookie_header(w: &World) -> String {
    w.jar.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
}

async fn salesforce_error_texts_are_never_echoed(backend: Backend) {
    let w = world(backend).await;
    let callback = w.authorize_at(&w.start_url("production", "production").await, "admin@acme.example", false).await;
    let url = url::Url::parse(&callback).unwrap();
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let evil = format!(
        "{}/oauth/callback?state={}&error=x%3Cscript%3Eevil&error_description=Call%20evil.example%20now",
        w.base,
        urlencode(&state)
    );
    let page = w.get(&evil).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(!page.body.contains("evil"), "{}", page.body);
}

/// The platform's side: an independent JOSE library (PyJWT) verifies the login token with the
/// published JWKS, and refuses a forged, expired or misaddressed one.
async fn an_independent_jose_library_verifies_the_platform_token(backend: Backend) {
    let python = std::env::var("FORCELINK_TEST_PYTHON")
        .unwrap_or_else(|_| panic!("FORCELINK_TEST_PYTHON is not set: a python with PyJWT[crypto] (infra/test.sh sets it)"));
    let w = world(backend).await;
    let jwks: serde_json::Value = w.browser.get(format!("{}/.well-known/jwks.json", w.base)).send().await.unwrap().json().await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = |exp: i64| sso::LoginClaims {
        iss: w.base.clone(),
        aud: "https://acme.platform.example".into(),
        sub: "u-ana".into(),
        site: "acme".into(),
        org: "00D000000000001AAA".into(),
        sf_user: "005000000000001AAA".into(),
        email: "ana@acme.example".into(),
        iat: now,
        exp,
        jti: "j1".into(),
        next: "/".into(),
    };
    let good = sso::mint_login(w.deps.keys.as_ref(), &claims(now + 120));
    let expired = sso::mint_login(w.deps.keys.as_ref(), &claims(now - 5));
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut forged_claims = claims(now + 120);
    forged_claims.sub = "u-boss".into();
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
    let forged = parts.join(".");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/testing/verify_login_token.py");
    let jwks_file = w.dir().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let verify = |token: &str, aud: &str| {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(["--jwks", jwks_file.to_str().unwrap(), "--issuer", &w.base, "--audience", aud, "--token", token])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (ok, out) = verify(&good, "https://acme.platform.example");
    assert!(ok, "{out}");
    assert!(out.contains("\"sub\": \"u-ana\""), "{out}");
    for (token, aud, why) in [
        (&forged, "https://acme.platform.example", "forged"),
        (&expired, "https://acme.platform.example", "expired"),
        (&good, "https://other.platform.example", "another audience"),
    ] {
        let (ok, out) = verify(token, aud);
        assert!(!ok, "{why} accepted: {out}");
    }
}

/// Log lines never carry a token-bearing path (an invitation's token is a credential).
async fn invitation_tokens_never_reach_the_log(backend: Backend) {
    let w = world(backend).await;
    let link = forcelink::salesforce::connections::invite(&w.deps, "acme", Some("production"), Some("admin@acme.example")).await.unwrap().1;
    let token = link.rsplit('/').next().unwrap().to_string();
    let buffer = support::LogBuffer::default();
    let _guard = tracing::subscriber::set_default(buffer.subscriber());
    // Other tests of this binary may have met these callsites with no subscriber: recompute
    // their cached interest now that this one exists.
    tracing::callsite::rebuild_interest_cache();
    let path = format!("/oauth/invite/{token}");
    let ok = oauth_callback::handle(&w.deps, get_req(&path, None)).await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    let tampered = oauth_callback::handle(&w.deps, get_req(&format!("{path}x"), None)).await;
    assert_eq!(tampered.status(), StatusCode::BAD_REQUEST);
    let logs = buffer.text();
    assert!(logs.contains("/oauth/invite/…"), "the refusal is logged: {logs}");
    assert!(!logs.contains(&token[..20]), "{logs}");
}

both_backends!(
    an_anonymous_start_is_refused_without_store_or_key_calls,
    a_connect_ticket_works_once_even_from_two_tabs,
    an_invitation_works_only_for_its_person,
    concurrent_callbacks_for_a_pending_connection_bind_exactly_one_org,
    a_pinned_org_is_the_only_one_that_connects,
    a_reauthorization_revokes_the_old_family_and_tells_the_admin,
    a_callback_finished_in_another_browser_is_refused,
    sso_trusts_only_the_sso_org_and_the_id_pair,
    sso_pages_may_be_framed_only_by_the_sites_salesforce_origins,
    a_connect_flow_never_starts_inside_a_frame,
    salesforce_error_texts_are_never_echoed,
    an_independent_jose_library_verifies_the_platform_token,
    invitation_tokens_never_reach_the_log,
);
