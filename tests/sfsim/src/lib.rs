//! sfsim: a Salesforce org simulator for tests, `forcelink dev`, demos and benchmarks.
//!
//! It serves OAuth 2.0, the SOAP login, the REST API (query, describe, CRUD, upsert, sObject
//! Collections), Bulk API 2.0 and outbound messages for several orgs at once, over HTTPS with a CA
//! it generates and over plain HTTP, on loopback. It shares no code with `forcelink`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sfsim::SimError> {
//! let sim = sfsim::Sim::start(sfsim::SimConfig::default()).await?;
//! println!("{} trusts {}", sim.https_url(), sim.ca_pem_path().display());
//! # Ok(()) }
//! ```

pub mod admin;
pub mod bulk;
pub mod cli;
pub mod clock;
pub mod collections;
pub mod config;
pub mod error;
pub mod faults;
pub mod ids;
pub mod oauth;
pub mod org;
pub mod outbound;
pub mod rest;
pub mod schema;
pub mod server;
pub mod sim;
pub mod soap;
pub mod soql;
pub mod store;
pub mod tls;
pub mod xml;

pub use cli::{SimArgs, run_cli};
pub use config::SimConfig;
pub use error::{ApiError, SimError};
pub use faults::Faults;
pub use org::{AppSpec, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OrgSpec, UserSpec};
pub use outbound::{Delivery, OutboundSettings, RuleSpec};
pub use schema::{FieldDef, FieldType, ObjectSpec};
pub use sim::{Core, GenSpec, OrgInfo, Urls, UserInfo};

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Entry point: `Sim::start(config)`.
pub struct Sim;

/// A running simulator. Derefs to [`Core`] for the admin methods; shuts down when dropped.
pub struct SimHandle {
    core: Arc<Core>,
    shutdown: watch::Sender<bool>,
    _tmp: Option<tempfile::TempDir>,
}

impl std::ops::Deref for SimHandle {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Sim {
    /// Binds the listeners on 127.0.0.1, writes the CA, creates the orgs and starts serving.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let (tmp, ca_dir) = match &config.ca_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new().prefix("sfsim-ca").tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let tls = tls::setup(&ca_dir)?;
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let mut certs = vec![reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).map_err(|e| SimError::Tls(e.to_string()))?];
        for f in &config.outbound_ca_files {
            let pem = std::fs::read(f)?;
            certs.extend(reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| SimError::Tls(e.to_string()))?);
        }
        http = http.tls_certs_merge(certs);
        let http = http.build().map_err(|e| SimError::Tls(e.to_string()))?;
        let https_l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.https_port))).await?;
        let http_l = match config.http_port {
            Some(p) => Some(TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, p))).await?),
            None => None,
        };
        let urls = Urls {
            https: format!("https://127.0.0.1:{}", https_l.local_addr()?.port()),
            http: match &http_l {
                Some(l) => Some(format!("http://127.0.0.1:{}", l.local_addr()?.port())),
                None => None,
            },
            ca_pem_path: tls.ca_path.clone(),
        };
        let core = Arc::new(Core::new(config.clone(), http));
        let _ = core.urls.set(urls);
        for app in &config.apps {
            core.register_app(app.clone());
        }
        if config.default_org {
            core.create_org(config::default_org())?;
        }
        for o in &config.orgs {
            core.create_org(o.clone())?;
        }
        let (tx, rx) = watch::channel(false);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
        tokio::spawn(server::accept_loop(core.clone(), https_l, Some(acceptor), rx.clone()));
        if let Some(l) = http_l {
            tokio::spawn(server::accept_loop(core.clone(), l, None, rx.clone()));
        }
        tokio::spawn(outbound::run(core.clone(), rx));
        tracing::info!(https = %core.urls().https, "sfsim started");
        Ok(SimHandle { core, shutdown: tx, _tmp: tmp })
    }
}

impl SimHandle {
    /// `https://127.0.0.1:PORT` (also the instance URL).
    pub fn https_url(&self) -> String {
        self.core.urls().https
    }
    /// `http://127.0.0.1:PORT` (panics never; empty if plain HTTP is off).
    pub fn http_url(&self) -> String {
        self.core.urls().http.unwrap_or_default()
    }
    /// Path of the CA certificate (PEM) to trust.
    pub fn ca_pem_path(&self) -> std::path::PathBuf {
        self.core.urls().ca_pem_path
    }
    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> Result<String, SimError> {
        Ok(std::fs::read_to_string(self.ca_pem_path())?)
    }
    /// Shared core (for moving into tasks).
    pub fn core(&self) -> Arc<Core> {
        self.core.clone()
    }
    /// Stops serving (also done on drop).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
