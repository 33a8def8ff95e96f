//! Checkpoints: where an interrupted run stopped (the Lambda deadline came), so the next
//! wake-up resumes there instead of starting over.
//!
//! One record per job (`CKPT#{job}`) holds the run's id, cursor, counts and deferred
//! deactivations; the ids a full pass has seen (needed to find users who left the filter)
//! go in chunk items beside it (`CKPT#{job}#{n}`), small enough for DynamoDB's 400 KB items.

use forcelink::domain::counts::Counts;

use forcelink::domain::keys;
use forcelink::domain::record::{self, Record};
use forcelink::ports::{Cond, Store};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::SyncError;
use crate::soql::Cursor;

/// Ids per chunk item (18 chars each: about 100 KB).
const CHUNK: usize = 5_000;

/// An interrupted run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub site: String,
    pub job: String,
    pub run_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// A full pass (else incremental).
    pub full: bool,
    /// The last record processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// Counts so far.
    #[serde(default)]
    pub counts: Counts,
    /// Errors so far.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Users seen inactive, to deactivate once the breaker agrees.
    #[serde(default)]
    pub deferred: Vec<String>,
    /// How many chunk items of seen ids follow.
    #[serde(default)]
    pub chunks: u32,
    /// Invocations the run has taken so far.
    #[serde(default)]
    pub invocations: u32,
}

#[derive(Serialize, Deserialize)]
struct IdChunk {
    site: String,
    job: String,
    n: u32,
    ids: Vec<String>,
}

impl Record for Checkpoint {
    fn pk(&self) -> String {
        keys::sync_state_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::checkpoint_sk(&self.job)
    }
}

impl Record for IdChunk {
    fn pk(&self) -> String {
        keys::sync_state_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::checkpoint_chunk_sk(&self.job, self.n)
    }
}

/// Saves a checkpoint and the ids seen so far (the chunks first, the record last).
pub async fn save(store: &dyn Store, mut ckpt: Checkpoint, seen: &[String]) -> Result<(), SyncError> {
    let old = load_record(store, &ckpt.site, &ckpt.job).await?.map_or(0, |c| c.chunks);
    let mut n = 0;
    for part in seen.chunks(CHUNK) {
        let chunk = IdChunk { site: ckpt.site.clone(), job: ckpt.job.clone(), n, ids: part.to_vec() };
        record::save(store, &chunk, Cond::Always).await?;
        n += 1;
    }
    for stale in n..old {
        store.delete(&keys::sync_state_pk(&ckpt.site), &keys::checkpoint_chunk_sk(&ckpt.job, stale), Cond::Always).await?;
    }
    ckpt.chunks = n;
    record::save(store, &ckpt, Cond::Always).await?;
    Ok(())
}

/// The job's checkpoint record alone (without the ids it had seen), if a run was interrupted.
pub async fn load_record(store: &dyn Store, site: &str, job: &str) -> Result<Option<Checkpoint>, SyncError> {
    Ok(record::load::<Checkpoint>(store, &keys::sync_state_pk(site), &keys::checkpoint_sk(job)).await?.map(|v| v.record))
}

/// The job's checkpoint and the ids it had seen, if a run was interrupted.
pub async fn load(store: &dyn Store, site: &str, job: &str) -> Result<Option<(Checkpoint, Vec<String>)>, SyncError> {
    let Some(ckpt) = load_record(store, site, job).await? else { return Ok(None) };
    let mut seen = Vec::new();
    for n in 0..ckpt.chunks {
        let chunk = record::load::<IdChunk>(store, &keys::sync_state_pk(site), &keys::checkpoint_chunk_sk(job, n))
            .await?
            .ok_or_else(|| SyncError::CheckpointChunkMissing { site: site.to_string(), job: job.to_string(), chunk: n })?;
        seen.extend(chunk.record.ids);
    }
    Ok(Some((ckpt, seen)))
}

/// Removes the job's checkpoint (the run finished or was abandoned).
pub async fn clear(store: &dyn Store, site: &str, job: &str) -> Result<(), SyncError> {
    if let Some(ckpt) = load_record(store, site, job).await? {
        store.delete(&keys::sync_state_pk(site), &keys::checkpoint_sk(job), Cond::Always).await?;
        for n in 0..ckpt.chunks {
            store.delete(&keys::sync_state_pk(site), &keys::checkpoint_chunk_sk(job, n), Cond::Always).await?;
        }
    }
    Ok(())
}
