//! `forcelink demo`: runs each flow end to end on a fresh stack (embedded backends in a
//! temporary data directory, or with `FORCELINK_BACKEND=aws` the table, queues and key of a
//! fresh `forcelink aws-bootstrap`; every route served on a loopback port, mail in a local
//! outbox) and prints each step. Exits non-zero if any flow fails.
//!
//! A flow is an async function over [`Demo`]; add one to [`FLOWS`].

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use forcelink::domain::directory::SalesforceUi;
use forcelink::domain::keys;
use forcelink::domain::record;
use forcelink::domain::site::Tabs;
use forcelink::domain::{DirectoryUser, Site};
use forcelink::links::{self, LinkClaims};
use forcelink::ports::{Cond, Query};
use forcelink::settings::Backend;
use forcelink::{Deps, Settings};
use http::StatusCode;
use link_redirect::clicks;
use link_redirect::route::RouteKind;

/// Options of `forcelink demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Run only these flows (by name).
    #[arg(long = "only")]
    pub only: Vec<String>,
    /// Keep the temporary data directory (outbox, store) for a look afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// What a flow gets: the dependencies of the running local stack and its base URL.
pub struct Demo {
    pub deps: Arc<Deps>,
    /// `http://127.0.0.1:PORT`, where every route is served.
    pub base: String,
    /// An HTTP client that does not follow redirects.
    pub http: reqwest::Client,
    stacks: Stacks,
}

impl Demo {
    /// Prints one step of a flow.
    pub fn step(&self, text: impl std::fmt::Display) {
        println!("  · {text}");
    }

    /// Whether the stacks run on AWS services.
    pub fn on_aws(&self) -> bool {
        !self.stacks.aws.is_empty()
    }

    /// Settings for a flow's own stack `name` on the demo's backend, with `vars` on top.
    pub fn settings(&self, name: &str, vars: &[(&str, String)]) -> anyhow::Result<Settings> {
        self.stacks.settings(name, vars)
    }
}

/// Where the demo's stacks keep their state: each its own directory under a temporary one
/// (the embedded store and queues, the mail outbox), and on AWS the one table, queues and key.
struct Stacks {
    dir: PathBuf,
    /// `FORCELINK_BACKEND=aws` and its resources; empty for the embedded backends.
    aws: BTreeMap<&'static str, String>,
}

impl Stacks {
    fn new(dir: PathBuf, backend: &Settings) -> Self {
        let aws = match &backend.backend {
            Backend::Embedded { .. } => BTreeMap::new(),
            Backend::Aws { table, queue_url, dlq_url, kms_key_id } => [
                ("FORCELINK_BACKEND", Some("aws".to_string())),
                ("FORCELINK_TABLE", Some(table.clone())),
                ("FORCELINK_QUEUE_URL", Some(queue_url.clone())),
                ("FORCELINK_DLQ_URL", dlq_url.clone()),
                ("FORCELINK_WORKFLOW_QUEUE_URL", backend.workflow_queue_url.clone()),
                ("FORCELINK_KMS_KEY_ID", Some(kms_key_id.clone())),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect(),
        };
        Self { dir, aws }
    }

    fn settings(&self, name: &str, vars: &[(&str, String)]) -> anyhow::Result<Settings> {
        let dir = self.dir.join(name);
        let mut all: BTreeMap<&str, String> = self.aws.clone();
        all.insert("FORCELINK_DATA_DIR", dir.display().to_string());
        all.insert("FORCELINK_MAILER", format!("outbox:{}", dir.join("outbox").display()));
        all.extend(vars.iter().cloned());
        Ok(Settings::from_lookup(|k| match k {
            "RUST_LOG" | "FORCELINK_LOG_FORMAT" => std::env::var(k).ok(),
            _ => all.get(k).cloned(),
        })?)
    }
}

type FlowFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;
type Flow = for<'a> fn(&'a Demo) -> FlowFuture<'a>;

/// Every flow, in order.
pub const FLOWS: &[(&str, Flow)] = &[
    ("links", |d| Box::pin(links_flow(d))),
    ("outbound", |d| Box::pin(crate::demo_outbound::flow(d))),
    ("connect", |d| Box::pin(crate::demo_connect::flow(d))),
    ("roster", |d| Box::pin(crate::demo_roster::flow(d))),
    ("export", |d| Box::pin(crate::demo_export::flow(d))),
];

/// Runs the flows on the backend `backend` names (only its backend and resources are used).
pub async fn run(backend: Settings, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stacks = Stacks::new(dir.clone(), &backend);
    let deps = Arc::new(Deps::from_settings(stacks.settings("", &[("FORCELINK_PUBLIC_URL", base.clone())])?).await?);
    ensure_empty(&deps).await?;
    let router = crate::dev::router(deps.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let demo = Demo { deps, base, http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?, stacks };
    match &backend.backend {
        Backend::Embedded { .. } => println!("forcelink demo: local stack on {} (data {})", demo.base, dir.display()),
        Backend::Aws { table, .. } => {
            println!("forcelink demo: stack on {} over AWS (table {table}; local files {})", demo.base, dir.display())
        }
    }

    let mut failed = Vec::new();
    for (name, flow) in FLOWS.iter().filter(|(name, _)| args.only.is_empty() || args.only.iter().any(|o| o == name)) {
        println!("\n== {name}");
        match flow(&demo).await {
            Ok(()) => println!("  ok"),
            Err(e) => {
                println!("  FAILED: {e:#}");
                failed.push(*name);
            }
        }
    }
    server.abort();
    if args.keep {
        println!("\ndata kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if failed.is_empty() {
        println!("\nall flows passed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nfailed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// The flows count what they made, so they need a store without sites (a new temporary
/// directory always is; on AWS, a fresh `forcelink aws-bootstrap --prefix`).
async fn ensure_empty(deps: &Deps) -> anyhow::Result<()> {
    let page = deps.store.query(&Query::prefix(keys::SITES_PK, "").on_gsi1().limit(1)).await?;
    anyhow::ensure!(
        page.items.is_empty(),
        "the demo needs an empty table: bootstrap a new one (`eval \"$(forcelink aws-bootstrap --prefix demo-$RANDOM)\"`)"
    );
    Ok(())
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    std::env::temp_dir().join(format!("forcelink-demo-{}-{nanos}", std::process::id()))
}

/// Links: an invitation link resolved for a Salesforce user (into the Lightning tab, or
/// Classic by the user's choice) and for a non-Salesforce user (into the platform); a link
/// scanner's HEAD uses nothing up; a single-use link works once; a bad link gets its page.
async fn links_flow(d: &Demo) -> anyhow::Result<()> {
    let store = d.deps.store.as_ref();
    let site = Site {
        id: "demo-links".into(),
        name: "Demo Links Co".into(),
        platform_url: "https://demo.platform.example".into(),
        platform_sso_url: None,
        tabs: Tabs {
            lightning: Some("https://demo.lightning.force.com/lightning/n/Learning".into()),
            classic: Some("https://demo.my.salesforce.com/servlet/servlet.Integration?lid=01r5g000000AbCd&ic=1".into()),
        },
        force_sso: false,
        admin_email: None,
        sender: None,
        default_connection: None,
        sso_connection: None,
        sso_match_email: false,
        org_id: None,
    };
    record::save(store, &site, Cond::Always).await?;
    let person = |id: &str, salesforce: bool, ui: Option<SalesforceUi>| DirectoryUser {
        site: site.id.clone(),
        id: id.into(),
        email: format!("{id}@demo.example"),
        first_name: id.into(),
        last_name: String::new(),
        salesforce_id: None,
        salesforce_org_id: None,
        active: true,
        tags: BTreeMap::from([("salesforce_user".to_string(), salesforce.to_string())]),
        manager_id: None,
        ui,
    };
    let people = [
        (person("sam-salesforce", true, None), RouteKind::Lightning),
        (person("cleo-classic", true, Some(SalesforceUi::Classic)), RouteKind::Classic),
        (person("pat-platform", false, None), RouteKind::Platform),
    ];
    d.step(format!("site {} with a Lightning and a Classic tab; platform {}", site.id, site.platform_url));
    let expires_at = d.deps.clock.epoch_secs() + 7 * 86_400;
    for (user, want) in &people {
        record::save(store, user, Cond::Always).await?;
        let claims = LinkClaims::new(&site.id, &user.id, "/surveys/demo-question", expires_at, true);
        let url =
            links::link_url(&d.deps.settings.public_url, &links::mint_issued(d.deps.keys.as_ref(), &claims, d.deps.clock.epoch_secs()));
        d.step(format!("invitation link for {} (salesforce_user={}): {} chars", user.id, user.is_salesforce_user(), url.len()));
        let head = d.http.head(&url).header("user-agent", "Mimecast URL Protect").send().await?;
        anyhow::ensure!(head.status() == StatusCode::FOUND, "a scanner's HEAD answered {}", head.status());
        let resp = d.http.get(&url).send().await?;
        anyhow::ensure!(resp.status() == StatusCode::FOUND, "the click answered {}", resp.status());
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let clicks = clicks::for_link(store, &claims.nonce).await?;
        let routed = clicks.first().and_then(|c| c.routed_to);
        anyhow::ensure!(routed == Some(*want), "routed to {routed:?}, expected {want:?}");
        d.step(format!("  scanner HEAD used nothing; click → {}: {location}", want.describe()));
        let again = d.http.get(&url).send().await?;
        anyhow::ensure!(again.status() == StatusCode::GONE, "a second click answered {}", again.status());
        d.step("  second click: 410, the single-use link is used up (page offers a fresh link)");
    }
    let resp = d.http.get(format!("{}/l/not-a-real-token", d.base)).send().await?;
    anyhow::ensure!(resp.status() == StatusCode::BAD_REQUEST, "a bad link answered {}", resp.status());
    d.step("a mangled link: 400 with a friendly page");
    Ok(())
}
