//! `forcelink dev`: every function's HTTP routes on one loopback port, the export pusher and
//! the workflow runner fed from their queues as Lambda's event source mappings do, and the
//! roster sync on a timer; on the embedded backends, or on AWS services (`FORCELINK_BACKEND=aws`,
//! e.g. moto after `forcelink aws-bootstrap`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use axum::body::Body;
use bytes::Bytes;
use clap::Args;
use forcelink::settings::Backend;
use forcelink::web::{self, Request, Response};
use forcelink::{Deps, Settings};
use http::StatusCode;

/// Options of `forcelink dev`.
#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080, env = "FORCELINK_DEV_PORT")]
    pub port: u16,
    /// Seconds between roster-sync wake-ups.
    #[arg(long, default_value_t = 300)]
    pub sync_every: u64,
    /// Don't start the simulated Salesforce org: use the login hosts from the settings.
    #[arg(long)]
    pub no_sim: bool,
    /// HTTPS port of the simulated org (0 picks a free one).
    #[arg(long, default_value_t = 8443)]
    pub sim_port: u16,
    /// Take in outbound messages but hold their workflow runs in the queue (no tasks, no
    /// emails) until dev runs without this flag: to inspect intake, or measure the Ack alone.
    #[arg(long)]
    pub hold_workflows: bool,
}

/// Largest request body the dev server accepts, as a Lambda Function URL does (6 MB).
const MAX_BODY: usize = 6 * 1024 * 1024;

/// Every HTTP function, in dispatch order.
const FUNCTIONS: [&str; 3] = [oauth_callback::NAME, outbound_webhook::NAME, link_redirect::NAME];

/// How long a workflow message the runner failed stays hidden on the embedded queue. On SQS
/// it is the queue's own visibility timeout, as under Lambda's event source mapping.
const EMBEDDED_WORKFLOW_RETRY: Duration = Duration::from_secs(5);

/// Runs the local stack until Ctrl-C; `local_dir` holds the simulator's CA on either backend.
pub async fn run(mut settings: Settings, local_dir: &Path, args: DevArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    let addr = listener.local_addr()?;
    if std::env::var_os("FORCELINK_PUBLIC_URL").is_none() {
        settings.public_url = url::Url::parse(&format!("http://{addr}"))?;
    }
    let sim = if args.no_sim { None } else { Some(crate::dev_sim::start(&mut settings, local_dir, args.sim_port).await?) };
    let deps = Arc::new(Deps::from_settings(settings).await?);
    let seeded = crate::dev_sim::seed_demo_site(&deps).await?;
    let connect = forcelink::salesforce::connections::connect_url(&deps, "acme", Some("production")).await.ok();
    print_banner(&deps, addr, sim.as_ref(), seeded, connect.as_deref());

    let shutdown = tokio_util_shutdown();
    let feeder = tokio::spawn(feed_export_pusher(deps.clone()));
    let workflows = if args.hold_workflows {
        println!("  workflow runs are held in the queue (--hold-workflows)");
        tokio::spawn(async {})
    } else {
        tokio::spawn(feed_workflow_runner(deps.clone()))
    };
    let timer = tokio::spawn(roster_timer(deps.clone(), Duration::from_secs(args.sync_every.max(1))));
    let app = router(deps.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    feeder.abort();
    workflows.abort();
    timer.abort();
    println!("forcelink dev stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_banner(deps: &Deps, addr: SocketAddr, sim: Option<&sfsim::SimHandle>, seeded: bool, connect: Option<&str>) {
    let base = format!("http://{addr}");
    println!("forcelink dev on {base}");
    if let Some(sim) = sim {
        println!("  simulated Salesforce  {} (users admin@acme.example, ana@acme.example; password `password`)", sim.https_url());
        println!("  simulator CA          {}", sim.ca_pem_path().display());
    }
    if seeded {
        println!("  seeded the demo site `acme` from infra/examples/acme.toml");
    }
    match connect {
        Some(url) => {
            println!("  connect in a browser  {url}\n                        (single use, 24 h; `forcelink connect acme` makes another)")
        }
        None => println!("  connect in a browser  the URL `forcelink connect SITE` prints (single use, 24 h)"),
    }
    match &deps.settings.backend {
        Backend::Embedded { data_dir } => println!("  data       {}", data_dir.display()),
        Backend::Aws { table, queue_url, .. } => {
            println!("  data       DynamoDB table {table}, export queue {queue_url}");
            match &deps.settings.workflow_queue_url {
                Some(url) => println!("             workflow queue {url}"),
                None => println!("             no FORCELINK_WORKFLOW_QUEUE_URL: workflow tasks run before the Ack"),
            }
        }
    }
    println!("  health     {base}/healthz");
    println!("  outbound   {base}/outbound/WORKFLOW_ID/SECRET  (forcelink status prints each)");
    println!("  links      {base}/l/TOKEN");
    println!("Ctrl-C stops.");
}

async fn tokio_util_shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}

/// The one router: `/healthz` for all, then each function's prefixes.
pub fn router(deps: Arc<Deps>) -> axum::Router {
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let deps = deps.clone();
        async move { into_axum(dispatch(&deps, req).await) }
    })
}

async fn dispatch(deps: &Deps, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    // Outbound messages have their own, smaller limit: answer 413 from Content-Length alone.
    if parts.uri.path().starts_with("/outbound/") {
        let declared = parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > outbound_webhook::MAX_BODY as u64) {
            return outbound_webhook::handle(deps, http::Request::from_parts(parts, Bytes::new())).await;
        }
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return web::json_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request body over 6 MB"),
    };
    let req: Request = http::Request::from_parts(parts, bytes);
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/healthz" => health(deps).await,
        p if p.starts_with("/healthz/") => match p.trim_start_matches("/healthz/") {
            name if name == oauth_callback::NAME => oauth_callback::handle(deps, req).await,
            name if FUNCTIONS.contains(&name) || name == export_pusher::NAME || name == roster_sync::NAME => web::healthz(name),
            _ => web::json_error(StatusCode::NOT_FOUND, "not_found", "no such function"),
        },
        p if oauth_callback::ROUTES.iter().any(|r| p.starts_with(r)) => oauth_callback::handle(deps, req).await,
        p if outbound_webhook::ROUTES.iter().any(|r| p.starts_with(r)) => outbound_webhook::handle(deps, req).await,
        p if link_redirect::ROUTES.iter().any(|r| p.starts_with(r)) => link_redirect::handle(deps, req).await,
        _ => web::json_error(StatusCode::NOT_FOUND, "not_found", "no route here; see /healthz"),
    }
}

/// Asks each HTTP function for its health; the two event functions are up when the stack is.
async fn health(deps: &Deps) -> Response {
    let probe = || http::Request::get("/healthz").body(Bytes::new()).unwrap_or_default();
    let answers = [
        oauth_callback::handle(deps, probe()).await,
        outbound_webhook::handle(deps, probe()).await,
        link_redirect::handle(deps, probe()).await,
        web::healthz(export_pusher::NAME),
        web::healthz(roster_sync::NAME),
    ];
    let ok = answers.iter().all(|a| a.status() == StatusCode::OK);
    let functions: Vec<serde_json::Value> = answers.iter().filter_map(|a| serde_json::from_slice(a.body()).ok()).collect();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    web::json(status, &serde_json::json!({ "status": if ok { "ok" } else { "degraded" }, "functions": functions }))
}

fn into_axum(resp: Response) -> axum::response::Response {
    let (parts, body) = resp.into_parts();
    axum::response::Response::from_parts(parts, Body::from(body))
}

/// Feeds the export pusher from the export queue, as the SQS event source mapping does:
/// batches of up to `BatchSize` (200) gathered within the batching window (1 s), deleting only
/// the messages the handler did not report as failed (`FORCELINK_EXPORT_BATCH_*` override).
async fn feed_export_pusher(deps: Arc<Deps>) {
    let feed = export_pusher::local::Feed::from_env();
    export_pusher::local::run(&deps, &export_pusher::Tuning::from_env(), &feed).await;
}

/// Runs workflow tasks from the workflow queue, as the SQS event source mapping does on AWS:
/// batches of up to 10, failed messages come back (after 5 s embedded, after the queue's
/// visibility timeout on SQS) and are dead-lettered after the receive limit.
async fn feed_workflow_runner(deps: Arc<Deps>) {
    let Some(queue) = deps.workflow_queue.clone() else { return };
    let retry_after = deps.settings.data_dir().map(|_| EMBEDDED_WORKFLOW_RETRY);
    loop {
        if let Err(e) = outbound_webhook::runner::pump(&deps, queue.as_ref(), Duration::from_secs(1), retry_after).await {
            tracing::error!(error = %e, "workflow queue failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Wakes the roster sync on a timer, as the schedule does on AWS.
async fn roster_timer(deps: Arc<Deps>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        let mut event = EventBridgeEvent::default();
        event.detail_type = "Scheduled Event".into();
        event.source = "forcelink.dev".into();
        if let Err(e) = roster_sync::handle(&deps, event).await {
            tracing::warn!(error = %e, "roster sync wake-up failed");
        }
    }
}
