//! Export state of a site for `forcelink status`: held and failed events, paused orgs, API use.

use forcelink::Deps;
use forcelink::domain::{Connection, keys, record};
use forcelink::ports::Query;
use serde::Serialize;

use crate::budget::{self, Pause};
use crate::historical;
use crate::ledger::{self, State};
use crate::tuning::Tuning;

/// Counts are capped here (status stays quick).
pub const COUNT_CAP: usize = 10_000;

/// What `forcelink status` shows about a site's export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportStatus {
    pub held: usize,
    pub failed: usize,
    /// Paused orgs (after `REQUEST_LIMIT_EXCEEDED`).
    pub paused: Vec<Pause>,
    /// Connections past the budget threshold: (connection, used, max).
    pub over_budget: Vec<(String, u64, u64)>,
    pub budget_share: f64,
    /// A historical export that stopped before the end (resumable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub historical: Option<historical::Checkpoint>,
}

/// The export state of `site`.
pub async fn of_site(deps: &Deps, site: &str) -> Result<ExportStatus, forcelink::domain::RecordError> {
    let store = deps.store.as_ref();
    let tuning = Tuning::from_env();
    let conns: Vec<Connection> = record::list(store, Query::prefix(keys::site_pk(site), keys::CONNECTION_PREFIX)).await?;
    let mut paused = Vec::new();
    let mut over_budget = Vec::new();
    for c in &conns {
        if let Some(org) = &c.org_id
            && let Some(p) = budget::paused(store, org).await?
        {
            paused.push(p);
        }
        if let Some((used, max)) = c.api_usage
            && budget::share(c.api_usage).is_some_and(|s| s >= tuning.budget_share)
        {
            over_budget.push((c.name.clone(), used, max));
        }
    }
    Ok(ExportStatus {
        held: ledger::count(store, site, State::Held, COUNT_CAP).await?,
        failed: ledger::count(store, site, State::Failed, COUNT_CAP).await?,
        paused,
        over_budget,
        budget_share: tuning.budget_share,
        historical: historical::checkpoint(store, site).await?.filter(|c| !c.done),
    })
}

/// The status as indented text lines (empty when there is nothing to say).
pub fn render(s: &ExportStatus) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    if s.held > 0 {
        let _ = writeln!(t, "    held events: {} (no live connection or org paused; they flow when it is back)", s.held);
    }
    if s.failed > 0 {
        let _ = writeln!(t, "    failed events: {} (fix the mapping or org, then `forcelink export replay SITE`)", s.failed);
    }
    for p in &s.paused {
        let until = time::OffsetDateTime::from_unix_timestamp(p.until).map(|t| t.to_string()).unwrap_or_else(|_| p.until.to_string());
        let _ = writeln!(t, "    org {} paused until {until}: {}", p.org_id, p.reason);
    }
    for (c, used, max) in &s.over_budget {
        let _ =
            writeln!(t, "    {c}: API usage {used}/{max} past {:.0}%: backfill paused, continuous export slowed", s.budget_share * 100.0);
    }
    if let Some(h) = &s.historical {
        let _ = writeln!(t, "    historical export {} stopped at {} of {} rows (rerun to resume)", h.run_id, h.rows_done, h.rows_total);
    }
    t
}
