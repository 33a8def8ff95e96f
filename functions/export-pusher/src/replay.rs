//! `forcelink export replay SITE` and `flush`: failed events go back to the export queue once
//! the mapping or the org is fixed; held events are released (e.g. after the site connects).

use forcelink::Deps;
use forcelink::ports::queue::{MAX_BODY_BYTES, send_batches};
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

/// Sends events as bundles (JSON arrays of up to [`BUNDLE`] events, each under SQS's message
/// size limit), packed into `SendMessageBatch` calls within SQS's count and total size limits.
/// An event too large for a message of its own is refused before anything is sent, as
/// [`QueueError::TooLarge`] naming it: no retry could send it.
pub async fn send_events(queue: &dyn Queue, events: &[serde_json::Value]) -> Result<usize, QueueError> {
    let mut bodies = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for (i, e) in events.iter().enumerate() {
        let text = e.to_string();
        if text.len() + 2 > MAX_BODY_BYTES {
            let what = format!("event {} of {} ({})", i + 1, events.len(), describe(e));
            return Err(QueueError::TooLarge { what, size: text.len() + 2, limit: MAX_BODY_BYTES });
        }
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
    for batch in send_batches(&bodies) {
        queue.send_batch(batch, std::time::Duration::ZERO).await?;
    }
    Ok(bodies.len())
}

/// An event's site, kind and id, for an error about it.
fn describe(event: &serde_json::Value) -> String {
    let field = |name: &str| event.get(name).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    format!("site {}, kind {}, id {}", field("site"), field("kind"), field("id"))
}
