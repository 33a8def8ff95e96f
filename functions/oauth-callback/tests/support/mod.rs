//! The test world of oauth-callback's end-to-end suites: a harness [`Stack`] (the simulator in
//! process, HTTPS with its own CA, on either backend) with the real handler served over HTTP,
//! and a "browser"
//! (reqwest with a cookie jar for forcelink's origin, no automatic redirects).

// Each test binary uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use forcelink::domain::Connection;
use forcelink::salesforce::session;
use http::StatusCode;
use sfsim::{OrgSpec, SimConfig, UserSpec};

pub use forcelink_stack::{Backend, CLIENT_ID, CLIENT_SECRET, Stack, both_backends};

pub struct World {
    pub stack: Stack,
    pub base: String,
    pub browser: reqwest::Client,
    /// The browser's cookies for forcelink's origin (name → value).
    pub jar: Mutex<BTreeMap<String, String>>,
}

impl std::ops::Deref for World {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

pub fn user(name: &str) -> UserSpec {
    UserSpec { username: name.into(), first_name: Some("Sam".into()), last_name: Some("Sync".into()), ..UserSpec::default() }
}

/// The site of every test: two connections, `production` (the default) and `uat`.
pub static SITE_TOML: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("{}\n[[sites.connections]]\nname = \"uat\"\nenvironment = \"sandbox\"\n", forcelink_stack::fixtures::ACME_CORP)
});

pub async fn world(backend: Backend) -> World {
    let w = bare_world(backend).await;
    w.apply(&SITE_TOML).await;
    w
}

/// The world without a site: apply one with [`Stack::apply`] (it may name the sim's org ids).
pub async fn bare_world(backend: Backend) -> World {
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
    let stack = Stack::start_with(backend, config, &[], "").await;
    stack.serve(|deps, req| async move { oauth_callback::handle(&deps, req).await });
    let ca = reqwest::Certificate::from_pem(stack.sim.ca_pem().unwrap().as_bytes()).unwrap();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).add_root_certificate(ca).build().unwrap();
    World { base: stack.public_url().to_string(), stack, browser, jar: Mutex::default() }
}

/// What a browser ends on.
pub struct Landing {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    /// The callback URL Salesforce sent the browser to (for replays).
    pub callback: Option<String>,
}

impl World {
    /// A GET as the browser: forcelink's cookies sent and kept, redirects not followed.
    pub async fn get(&self, url: &str) -> Landing {
        let mut req = self.browser.get(url);
        if url.starts_with(&self.base) {
            let cookies: Vec<String> = self.jar.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !cookies.is_empty() {
                req = req.header("cookie", cookies.join("; "));
            }
        }
        let resp = req.send().await.unwrap();
        if url.starts_with(&self.base) {
            self.keep_cookies(resp.headers());
        }
        let status = resp.status();
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        Landing { status, location, body: resp.text().await.unwrap(), callback: None }
    }

    /// Starts at `start`, logs in at the simulator's page as `username` and approves (or
    /// denies), then follows Salesforce's redirect to the callback.
    pub async fn click_through(&self, start: &str, username: &str, approve: bool) -> Landing {
        let back = self.authorize_at(start, username, approve).await;
        let mut landing = self.get(&back).await;
        landing.callback = Some(back);
        landing
    }

    /// [`Self::click_through`] up to Salesforce's redirect: returns the callback URL, unvisited.
    pub async fn authorize_at(&self, start: &str, username: &str, approve: bool) -> String {
        let first = self.get(start).await;
        assert_eq!(first.status, StatusCode::FOUND, "start: {}", first.body);
        self.sf_login(&first.location.unwrap(), username, approve).await
    }

    /// At Salesforce's authorize URL: logs in as `username` and approves (or denies); returns
    /// the callback URL Salesforce redirects to.
    pub async fn sf_login(&self, authorize: &str, username: &str, approve: bool) -> String {
        assert!(authorize.contains("/services/oauth2/authorize?"), "{authorize}");
        assert!(authorize.contains("code_challenge_method=S256"), "{authorize}");
        let page = self.get(authorize).await;
        if page.status == StatusCode::FOUND {
            // Approved already (the simulator's login hint, as a signed-in Salesforce session).
            return page.location.unwrap();
        }
        assert_eq!(page.status, StatusCode::OK, "login page: {}", page.body);
        let url = url::Url::parse(authorize).unwrap();
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("username".into(), username.into()));
        form.push(("action".into(), if approve { "approve" } else { "deny" }.into()));
        let post = url.as_str().split('?').next().unwrap().to_string();
        let resp = self.browser.post(&post).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        let back = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(back.starts_with(&format!("{}/oauth/callback?", self.base)), "{back}");
        back
    }

    pub fn keep_cookies(&self, headers: &http::HeaderMap) {
        let mut jar = self.jar.lock().unwrap();
        for set in headers.get_all("set-cookie") {
            let text = set.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            assert!(name.starts_with("__Host-") && attrs.contains("Secure") && attrs.contains("HttpOnly"), "{text}");
            if attrs.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// Another browser: no cookies.
    pub fn forget_cookies(&self) -> BTreeMap<String, String> {
        std::mem::take(&mut *self.jar.lock().unwrap())
    }

    /// A fresh `forcelink connect` URL (single-use ticket) for a connection, with `env`.
    pub async fn start_url(&self, connection: &str, env: &str) -> String {
        let url = forcelink::salesforce::connections::connect_url(&self.deps, "acme", Some(connection)).await.unwrap();
        let mut u = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().filter(|(k, _)| k != "env").collect();
        u.query_pairs_mut().clear().extend_pairs(pairs).append_pair("env", env);
        u.to_string()
    }

    pub async fn connection(&self, name: &str) -> Connection {
        session::load(&self.deps, "acme", name).await.unwrap().record
    }

    pub async fn connect_production(&self) -> Landing {
        let landing = self.click_through(&self.start_url("production", "production").await, "admin@acme.example", true).await;
        assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
        landing
    }
}

/// Keeps a page for the screenshot script (`infra/screenshots.sh`).
pub fn keep(name: &str, body: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts/oauth-callback");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.html")), body);
}

pub fn assert_no_secrets(conn: &Connection, body: &str) {
    let stored = serde_json::to_string(conn).unwrap();
    for secret in [CLIENT_SECRET, "5Aep861"] {
        assert!(!stored.contains(secret), "stored record holds {secret}");
        assert!(!body.contains(secret), "page holds {secret}");
    }
}

pub fn get_req(path: &str, cookie: Option<&str>) -> forcelink::web::Request {
    let mut req = http::Request::get(path);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.body(bytes::Bytes::new()).unwrap()
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The action and hidden fields of a form_post page.
pub fn form_post(body: &str) -> (String, BTreeMap<String, String>) {
    forcelink::salesforce::sso::read_form_post(body).expect("a form_post page")
}

/// Log lines captured in memory (a subscriber for `tracing::subscriber::set_default`).
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let sink = self.clone();
        tracing_subscriber::fmt().with_writer(move || sink.clone()).with_max_level(tracing::Level::DEBUG).with_ansi(false).finish()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
