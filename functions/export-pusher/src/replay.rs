//! `forcelink export replay SITE` and `flush`: failed events go back to the export queue once
//! the mapping or the org is fixed; held events are released (e.g. after the site connects).

use forcelink::Deps;
use forcelink::ports::queue::{MAX_BATCH, MAX_BODY_BYTES};
use forcelink::ports::{Queue, QueueError};

use crate::ledger::{self, State};

/// Events per message when re-sending (bundles keep the collections calls full).
pub const BUNDLE: usize = 200;

/// Failures of replay and flush.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("store: {0}")]
    Store(#[from] forcelink::domain::RecordError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// Re-sends every failed event of `site` to the export queue; returns how many.
pub async fn replay_failed(deps: &Deps, site: &str) -> Result<usize, ReplayError> {
    resend(deps, site, State::Failed).await
}

/// Re-sends every held event of `site` to the export queue; returns how many.
pub async fn flush_held(deps: &Deps, site: &str) -> Result<usize, ReplayError> {
    resend(deps, site, State::Held).await
}

async fn resend(deps: &Deps, site: &str, state: State) -> Result<usize, ReplayError> {
    let entries = ledger::listed(deps.store.as_ref(), site, state, usize::MAX).await?;
    let events: Vec<serde_json::Value> = entries.into_iter().map(|(e, _)| e.event).collect();
    send_events(deps.queue.as_ref(), &events).await?;
    Ok(events.len())
}

/// Sends events as bundles (JSON arrays of up to [`BUNDLE`] events, under SQS's size limit),
/// ten messages a call.
pub async fn send_events(queue: &dyn Queue, events: &[serde_json::Value]) -> Result<usize, QueueError> {
    let mut bodies = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for e in events {
        let text = e.to_string();
        if !current.is_empty() && (current.len() >= BUNDLE || size + text.len() + 1 > MAX_BODY_BYTES) {
            bodies.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += text.len() + 1;
        current.push(text);
    }
    if !current.is_empty() {
        bodies.push(format!("[{}]", current.join(",")));
    }
    for chunk in bodies.chunks(MAX_BATCH) {
        queue.send_batch(chunk, std::time::Duration::ZERO).await?;
    }
    Ok(bodies.len())
}
