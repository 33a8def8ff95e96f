//! [`Stack`]: the simulator, a temporary directory and forcelink's [`Deps`] on one backend,
//! with the helpers every end-to-end suite needs (apply a site, connect an org with the
//! simulator's tokens, a second "Lambda", the mail outbox, the handler served over HTTP or
//! `forcelink dev` run on the stack, writes counted).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use forcelink::backends::kms::KmsKeyRing;
use forcelink::backends::local_keyring::LocalKeyRing;
use forcelink::salesforce::oauth::ids_from_identity_url;
use forcelink::salesforce::session::{self, TokenBundle};
use forcelink::web::{Request, Response};
use forcelink::{Deps, Settings};
use sfsim::{Sim, SimConfig, SimHandle};

use crate::Backend;
use crate::dev::DevServer;
use crate::write_count::{CountingStore, WriteCount};

/// The simulator's default client app: forcelink's app in the tests.
pub const CLIENT_ID: &str = sfsim::DEFAULT_CLIENT_ID;
/// Its secret.
pub const CLIENT_SECRET: &str = sfsim::DEFAULT_CLIENT_SECRET;

/// What the AWS SDK is told on moto (the settings a child process needs beside forcelink's).
const MOTO_ENV: [(&str, &str); 3] = [("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];

/// The stack under test.
pub struct Stack {
    pub backend: Backend,
    pub sim: SimHandle,
    /// Lambda A: the stack's own ports and caches.
    pub deps: Deps,
    /// The settings as environment variables (a child process opens the same stack with them).
    vars: BTreeMap<String, String>,
    /// moto's SDK configuration, on [`Backend::Moto`].
    aws: Option<SdkConfig>,
    /// Bound at start so the public URL is known; [`Stack::serve`] takes it.
    listener: Mutex<Option<tokio::net::TcpListener>>,
    /// Its address, `http://127.0.0.1:PORT`.
    listen_url: String,
    /// Its port, where [`Stack::start_dev`] runs `forcelink dev`.
    listen_port: u16,
    dir: tempfile::TempDir,
}

impl Stack {
    /// The simulator on its defaults and a stack on `backend` with `site_toml` applied.
    pub async fn start(backend: Backend, site_toml: &str) -> Stack {
        Self::start_with(backend, SimConfig::default(), &[], site_toml).await
    }

    /// As [`Stack::start`] with a simulator configuration and settings (`FORCELINK_…`) that
    /// replace the harness's. An empty `site_toml` applies nothing.
    pub async fn start_with(backend: Backend, sim_config: SimConfig, overrides: &[(&str, &str)], site_toml: &str) -> Stack {
        keep_log_callsites_live();
        let sim = Sim::start(sim_config).await.expect("the simulator starts");
        let dir = tempfile::tempdir().expect("a temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let listen_port = listener.local_addr().expect("its address").port();
        let listen_url = format!("http://127.0.0.1:{listen_port}");
        let mut vars: BTreeMap<String, String> = [
            ("FORCELINK_DATA_DIR", dir.path().display().to_string()),
            ("FORCELINK_PUBLIC_URL", listen_url.clone()),
            ("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string()),
            ("FORCELINK_SF_CLIENT_ID", CLIENT_ID.into()),
            ("FORCELINK_SF_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("FORCELINK_SF_LOGIN_URL", sim.https_url()),
            ("FORCELINK_SF_SANDBOX_URL", format!("{}/test.salesforce.com", sim.https_url())),
            // Suites read what they just changed in the simulator; the lag window has its own test.
            ("FORCELINK_SYNC_LAG_SECS", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let aws = match backend {
            Backend::Embedded => None,
            Backend::Moto => {
                let url = Backend::moto_url();
                let config = forcelink::backends::aws::emulator_config(&url).await;
                let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let made = forcelink::backends::emulator::bootstrap(&config, &prefix).await.expect("the table, queues and key on moto");
                vars.extend(made);
                vars.insert("FORCELINK_BACKEND".into(), "aws".into());
                vars.insert("FORCELINK_MAILER".into(), format!("outbox:{}", dir.path().join("outbox").display()));
                vars.insert("AWS_ENDPOINT_URL".into(), url);
                vars.extend(MOTO_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                Some(config)
            }
        };
        vars.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let deps = open(&vars, aws.as_ref()).await;
        let stack = Stack { backend, sim, deps, vars, aws, listener: Mutex::new(Some(listener)), listen_url, listen_port, dir };
        if !site_toml.trim().is_empty() {
            stack.apply(site_toml).await;
        }
        stack
    }

    /// Applies a site file (all of it or nothing; panics on an error).
    pub async fn apply(&self, toml: &str) {
        forcelink::config::apply_text(self.deps.store.as_ref(), self.deps.keys.as_ref(), "test.toml", toml)
            .await
            .expect("the site applies");
    }

    /// Connects `site`/`connection` (which must exist) to `username`'s org with the tokens a
    /// code exchange would give (the simulator issues them; no browser): access and refresh
    /// token, the org and the instance from the answer.
    pub async fn connect(&self, site: &str, connection: &str, username: &str) {
        let answer = sfsim::oauth::knobs::issue_refresh_token(&self.sim, username, CLIENT_ID).expect("the simulator knows the user");
        let field = |name: &str| answer[name].as_str().unwrap_or_else(|| panic!("the token answer has no {name}")).to_string();
        let (org_id, _user) = ids_from_identity_url(&field("id")).expect("an identity URL");
        let tokens = TokenBundle { access_token: field("access_token"), refresh_token: Some(field("refresh_token")) };
        session::connect_with_tokens(&self.deps, site, connection, &org_id, &field("instance_url"), &tokens).await.expect("connected");
    }

    /// Another "Lambda": its own ports and caches on the same store, queues, keys and clock.
    pub async fn another_lambda(&self) -> Deps {
        self.another_lambda_with(&[]).await
    }

    /// As [`Stack::another_lambda`], with some settings replaced (e.g. a wrong client secret).
    pub async fn another_lambda_with(&self, overrides: &[(&str, &str)]) -> Deps {
        let mut vars = self.vars.clone();
        vars.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut deps = open(&vars, self.aws.as_ref()).await;
        deps.clock = self.deps.clock.clone();
        deps
    }

    /// The settings as environment variables, for a child process (moto's endpoint, region
    /// and credentials included).
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The temporary directory: the embedded data directory, and the outbox on both backends.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `FORCELINK_PUBLIC_URL`: [`Stack::listen_url`] unless a test replaced it.
    pub fn public_url(&self) -> &str {
        self.deps.settings.public_url.as_str().trim_end_matches('/')
    }

    /// Where [`Stack::serve`] serves: `http://127.0.0.1:PORT`.
    pub fn listen_url(&self) -> &str {
        &self.listen_url
    }

    /// Adds a new HMAC signing key to the stack's key ring (`forcelink rotate-keys`); answers
    /// its id. Running `Deps` pick it up when a token names it; new ones sign with it.
    pub async fn rotate_keys(&self) -> String {
        match (&self.deps.settings.backend, &self.aws) {
            (forcelink::settings::Backend::Aws { kms_key_id, .. }, Some(config)) => {
                let kms = aws_sdk_kms::Client::new(config);
                let ring = KmsKeyRing::load(kms, kms_key_id.clone(), self.deps.store.clone()).await.expect("the keyset loads");
                ring.rotate().await.expect("the keyset rotates")
            }
            _ => LocalKeyRing::rotate(&self.dir.path().join(forcelink::deps::files::KEYS)).expect("the key file rotates"),
        }
    }

    /// Every email sent so far, oldest first, quoted-printable soft line breaks and `=3D` undone.
    pub fn outbox(&self) -> Vec<String> {
        let dir = self.dir.path().join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read_to_string(p).expect("a readable message").replace("=\r\n", "").replace("=3D", "=")).collect()
    }

    /// From now on, counts the writes this stack's `deps` make to partitions whose key starts
    /// with `pk_prefix` (a `Deps` opened later, e.g. [`Stack::another_lambda`], is not counted).
    pub fn count_writes(&mut self, pk_prefix: &str) -> WriteCount {
        let count = WriteCount::default();
        let inner = self.deps.store.clone();
        self.deps.store = Arc::new(CountingStore { inner, pk_prefix: pk_prefix.to_string(), count: count.clone() });
        count
    }

    /// Runs `forcelink dev` (the binary `bin`) on this stack, as the process serving it: the
    /// stack's settings, on the port of [`Stack::listen_url`] (which [`Stack::serve`] can no
    /// longer take), with the stack's simulator (`--no-sim`) and `flags`. Again after the last
    /// one was dropped, to bring the endpoint back.
    pub fn start_dev(&self, bin: &Path, flags: &[&str]) -> DevServer {
        drop(self.listener.lock().expect("the listener lock").take());
        let flags = [&["--no-sim"], flags].concat();
        DevServer::start(bin, self.listen_port, &self.vars, &flags)
    }

    /// Serves `handler` over HTTP on the port of the public URL, with this stack's `Deps`; the
    /// task ends when aborted (the endpoint "goes down"). Once per stack.
    pub fn serve<F, Fut>(&self, handler: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Arc<Deps>, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let listener = self.listener.lock().expect("the listener lock").take().expect("a stack serves once");
        let deps = Arc::new(self.deps.clone());
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (deps, handler) = (deps.clone(), handler.clone());
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 8 << 20).await.unwrap_or_default();
                let (parts, body) = handler(deps, http::Request::from_parts(parts, bytes)).await.into_parts();
                axum::response::Response::from_parts(parts, axum::body::Body::from(body))
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }
}

/// Sets, once per test process, a global subscriber that records nothing but wants every log
/// callsite. Without one, a callsite first hit by a test that captures nothing can be cached as
/// of no interest while a test beside it captures logs with a scoped subscriber (the suites that
/// check what the log says), and that test misses the line.
fn keep_log_callsites_live() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
}

/// `Deps` for these settings, on moto's configuration when given (the process environment is
/// never read or changed: tests run in parallel threads).
async fn open(vars: &BTreeMap<String, String>, aws: Option<&SdkConfig>) -> Deps {
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("valid settings");
    Deps::from_settings_with(settings, aws).await.expect("the stack opens")
}
