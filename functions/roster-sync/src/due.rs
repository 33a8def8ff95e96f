//! Which jobs are due, and the lease that keeps overlapping wake-ups from running one job twice.

use forcelink::domain::keys;
use forcelink::domain::record;
use forcelink::domain::site::Site;
use forcelink::domain::sync::SyncJob;
use forcelink::ports::{Cond, Item, Query, Store, StoreError};
use time::OffsetDateTime;

use crate::error::SyncError;
use crate::state::JobState;

/// Whether `job` should run at `now`.
pub fn is_due(job: &SyncJob, state: &JobState, now: OffsetDateTime) -> bool {
    job.enabled && state.next_due.is_some_and(|t| t <= now)
}

/// Every enabled job of every site, with its state.
pub async fn all_jobs(store: &dyn Store, now: OffsetDateTime) -> Result<Vec<(SyncJob, JobState)>, SyncError> {
    let sites: Vec<Site> = record::list(store, Query::prefix(keys::SITES_PK, "").on_gsi1()).await?;
    let mut out = Vec::new();
    for site in sites {
        let jobs: Vec<SyncJob> = record::list(store, Query::prefix(keys::site_pk(&site.id), keys::SYNC_PREFIX)).await?;
        for job in jobs {
            let state = crate::state::load(store, &site.id, &job.name, now).await?;
            out.push((job, state));
        }
    }
    Ok(out)
}

/// A held run lease; release it when done (it expires by itself otherwise).
#[derive(Debug)]
pub struct Lease {
    pk: String,
    sk: String,
    version: u64,
}

/// Takes the job's lease for `ttl_secs`, or `None` when another run holds it.
pub async fn acquire(store: &dyn Store, site: &str, job: &str, holder: &str, now: i64, ttl_secs: i64) -> Result<Option<Lease>, SyncError> {
    let pk = keys::sync_state_pk(site);
    let sk = keys::sync_lease_sk(job);
    let body = serde_json::json!({ "holder": holder, "since": now }).to_string();
    let item = Item::new(pk.clone(), sk.clone(), body).with_expiry(now + ttl_secs);
    match store.put(item, Cond::NotExists).await {
        Ok(version) => Ok(Some(Lease { pk, sk, version })),
        Err(StoreError::ConditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Releases a lease (only if it is still ours).
pub async fn release(store: &dyn Store, lease: Lease) {
    match store.delete(&lease.pk, &lease.sk, Cond::Version(lease.version)).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => tracing::warn!(error = %e, lease = %lease.sk, "lease not released; it expires by itself"),
    }
}
