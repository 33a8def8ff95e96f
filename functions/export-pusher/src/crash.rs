//! Crash injection for the idempotence tests: `FORCELINK_EXPORT_CRASH=POINT[@N]` aborts the
//! process the N-th time (default first) execution reaches `POINT`. Points: `after_admit`
//! (ledger written, nothing sent), `after_upsert` (Salesforce written, ledger not),
//! `after_settle` (ledger written, message not deleted), `bulk_after_upload`,
//! `bulk_after_close` (historical export). Unset, this costs one atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

static PLAN: OnceLock<Option<(String, u32)>> = OnceLock::new();
static SEEN: AtomicU32 = AtomicU32::new(0);

/// Aborts here if the crash plan says so.
pub fn point(name: &str) {
    let plan = PLAN.get_or_init(|| {
        let v = std::env::var("FORCELINK_EXPORT_CRASH").ok()?;
        let (p, n) = v.split_once('@').map_or((v.as_str(), 1), |(p, n)| (p, n.parse().unwrap_or(1)));
        Some((p.to_string(), n))
    });
    if let Some((p, n)) = plan
        && p == name
        && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("export-pusher: crash injected at {name}");
        std::process::abort();
    }
}
