//! Log setup: text for people, JSON lines on Lambda. Filter with `RUST_LOG` (default `info`).
//!
//! The Lambda runtime's own logs are capped at `debug` whatever `RUST_LOG` says: at `trace` it
//! logs each raw event, and an event's path can carry a token (`/l/{token}`, an invitation).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// Targets whose `trace` lines would hold raw requests.
const RAW_EVENT_TARGETS: &[&str] = &["lambda_runtime=debug", "lambda_http=debug", "lambda_runtime_api_client=debug"];

/// Installs the global subscriber once; later calls do nothing.
pub fn init(json: bool) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for cap in RAW_EVENT_TARGETS {
        if let Ok(d) = cap.parse::<Directive>() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ =
        if json { builder.json().flatten_event(true).with_current_span(false).try_init() } else { builder.with_target(false).try_init() };
}
