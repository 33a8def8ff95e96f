//! Counting the writes that reach part of the store: a [`Store`] wrapper for the suites that
//! check what a run wrote (nothing on an unchanged re-run), the same way on both backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use forcelink::ports::{Cond, Item, Page, Query, Store, StoreError, WriteOp};

/// The successful writes (puts and deletes, alone or in a transaction) to the partitions a
/// [`crate::Stack::count_writes`] names, since the last [`WriteCount::take`].
#[derive(Debug, Clone, Default)]
pub struct WriteCount(Arc<AtomicU64>);

impl WriteCount {
    /// The count so far, set back to zero.
    pub fn take(&self) -> u64 {
        self.0.swap(0, Ordering::SeqCst)
    }

    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::SeqCst);
    }
}

/// `inner`, counting into `count` the writes whose partition key starts with `pk_prefix`.
pub(crate) struct CountingStore {
    pub(crate) inner: Arc<dyn Store>,
    pub(crate) pk_prefix: String,
    pub(crate) count: WriteCount,
}

impl CountingStore {
    fn counts(&self, pk: &str) -> bool {
        pk.starts_with(&self.pk_prefix)
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(pk, sk).await
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<u64, StoreError> {
        let counts = self.counts(&item.pk);
        let version = self.inner.put(item, cond).await?;
        if counts {
            self.count.add(1);
        }
        Ok(version)
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.inner.delete(pk, sk, cond).await?;
        if self.counts(pk) {
            self.count.add(1);
        }
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let writes = ops.iter().filter(|op| !matches!(op, WriteOp::Check { .. }) && self.counts(op.key().0)).count();
        self.inner.transact(ops).await?;
        self.count.add(writes as u64);
        Ok(())
    }
}
