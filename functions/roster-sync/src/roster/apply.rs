//! Writing to the directory: batched conditional writes through `Store::transact` (≤100
//! each), falling back to one write at a time when a batch's condition fails, and nothing at
//! all on a dry run.

use forcelink::domain::DirectoryUser;
use forcelink::domain::keys;
use forcelink::domain::record::{Record, decode};
use forcelink::ports::store::transaction_chunks;
use forcelink::ports::{Cond, Item, Store, StoreError, WriteOp};

use crate::error::SyncError;

/// Collects writes and applies them in transactions.
pub struct Writer<'a> {
    store: &'a dyn Store,
    dry_run: bool,
    ops: Vec<WriteOp>,
    /// Items written (or, dry, that would be).
    pub writes: u64,
    /// Writes that lost a race (someone changed the item meanwhile); the next run retries.
    pub conflicts: Vec<String>,
}

impl<'a> Writer<'a> {
    pub fn new(store: &'a dyn Store, dry_run: bool) -> Self {
        Self { store, dry_run, ops: Vec::new(), writes: 0, conflicts: Vec::new() }
    }

    /// Queues a record write under `cond`.
    pub fn put<R: Record>(&mut self, record: &R, cond: Cond) -> Result<(), SyncError> {
        let item = record.to_item()?;
        self.ops.push(WriteOp::Put { item, cond });
        Ok(())
    }

    /// Queues a delete under `cond`.
    pub fn delete(&mut self, pk: String, sk: String, cond: Cond) {
        self.ops.push(WriteOp::Delete { pk, sk, cond });
    }

    /// Writes what is queued.
    pub async fn flush(&mut self) -> Result<(), SyncError> {
        let ops = std::mem::take(&mut self.ops);
        if self.dry_run {
            self.writes += ops.len() as u64;
            return Ok(());
        }
        for chunk in transaction_chunks(ops) {
            match self.store.transact(chunk.clone()).await {
                Ok(()) => self.writes += chunk.len() as u64,
                Err(StoreError::ConditionFailed { .. }) => {
                    for op in chunk {
                        self.one(op.clone()).await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn one(&mut self, op: WriteOp) -> Result<(), SyncError> {
        let key = format!("{}/{}", op.key().0, op.key().1);
        let r = match op {
            WriteOp::Put { item, cond } => self.store.put(item, cond).await.map(|_| ()),
            WriteOp::Delete { pk, sk, cond } => self.store.delete(&pk, &sk, cond).await,
            WriteOp::Check { .. } => Ok(()),
        };
        match r {
            Ok(()) => self.writes += 1,
            Err(StoreError::ConditionFailed { .. }) => {
                self.conflicts.push(format!("{key} changed while the run wrote it; the next run retries"))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Deactivates a user (read, flip `active`, conditional write); `false` if it is gone or
    /// already inactive.
    pub async fn deactivate(&mut self, site: &str, id: &str) -> Result<bool, SyncError> {
        if self.dry_run {
            self.writes += 1;
            return Ok(true);
        }
        let sk = keys::user_sk(id);
        let Some(item) = self.store.get(&keys::directory_pk(site), &sk).await? else { return Ok(false) };
        let mut user: DirectoryUser = decode(&item)?;
        if !user.active {
            return Ok(false);
        }
        user.active = false;
        let next: Item = user.to_item()?;
        self.one(WriteOp::Put { item: next, cond: Cond::Version(item.version) }).await?;
        Ok(true)
    }
}
