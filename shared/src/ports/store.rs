//! The `Store` port: a single-table key-value store with DynamoDB's semantics.
//!
//! Every record lives under a partition key `pk` and a sort key `sk`, may carry one
//! secondary index entry (`gsi1pk`/`gsi1sk`) and an expiry (`expires_at`, epoch seconds:
//! an expired item reads as absent everywhere, before any background deletion).
//! Each write bumps the item's `version`, which conditional writes compare against.

use async_trait::async_trait;

pub use super::item_size::{item_size, key_size};

/// One stored record. `body` is the record's JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Secondary index entry: (`gsi1pk`, `gsi1sk`).
    pub gsi1: Option<(String, String)>,
    /// Epoch seconds after which the item reads as absent.
    pub expires_at: Option<i64>,
    /// Bumped on each write; 0 for an item not yet written.
    pub version: u64,
    pub body: String,
}

impl Item {
    /// A new item with no index entry, expiry or version.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, body: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into(), gsi1: None, expires_at: None, version: 0, body: body.into() }
    }

    /// Sets the secondary index entry.
    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1 = Some((pk.into(), sk.into()));
        self
    }

    /// Sets the expiry (epoch seconds).
    pub fn with_expiry(mut self, expires_at: i64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Whether the item has expired at `now` (epoch seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// A write's precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// Write whatever is there.
    Always,
    /// Write only if no live (unexpired) item has this key.
    NotExists,
    /// Write only if a live item exists with exactly this version.
    Version(u64),
    /// Write only if a live item exists.
    Exists,
}

/// One operation of an atomic multi-item write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put {
        item: Item,
        cond: Cond,
    },
    Delete {
        pk: String,
        sk: String,
        cond: Cond,
    },
    /// Checks a condition without writing.
    Check {
        pk: String,
        sk: String,
        cond: Cond,
    },
}

/// Which key a query runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// `pk` + `sk`.
    Primary,
    /// `gsi1pk` + `gsi1sk`.
    Gsi1,
}

/// A prefix query: all live items with partition key `pk` whose sort key starts with `prefix`.
#[derive(Debug, Clone)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub prefix: String,
    /// At most this many items per page (capped at 1,000).
    pub limit: usize,
    /// Descending sort-key order when true.
    pub reverse: bool,
    /// Cursor from the previous page's `next`.
    pub after: Option<String>,
}

impl Query {
    /// A forward query on the primary key, 100 items a page.
    pub fn prefix(pk: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self { index: Index::Primary, pk: pk.into(), prefix: prefix.into(), limit: 100, reverse: false, after: None }
    }

    /// The same query on the secondary index.
    pub fn on_gsi1(mut self) -> Self {
        self.index = Index::Gsi1;
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Reverses the order.
    pub fn reversed(mut self) -> Self {
        self.reverse = true;
        self
    }
}

/// One page of a query; `next` is the cursor for the following page, if any.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's condition did not hold (for a transaction: some operation's).
    #[error("condition failed for {pk}/{sk}")]
    ConditionFailed { pk: String, sk: String },
    /// A transaction with too many operations, none, or two operations on one key.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Over one of DynamoDB's size limits (an item, a transaction): permanent, retrying the
    /// same request can never succeed. `what` names it (e.g. `item site#acme/run#…`).
    #[error("{what} is {size} bytes, over DynamoDB's limit of {limit} bytes")]
    TooLarge { what: String, size: usize, limit: usize },
    /// A cursor that did not come from this query.
    #[error("invalid cursor")]
    BadCursor,
    /// The backend failed (I/O, network, throttling); the operation may be retried.
    #[error("store backend: {0}")]
    Backend(#[from] super::BackendError),
}

/// DynamoDB's limits, from "Constraints in Amazon DynamoDB" (binary units: 1 KB = 1,024
/// bytes), <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html>,
/// and the `TransactWriteItems` API reference ("groups up to 100 action requests … no two
/// actions can target the same item … The aggregate size of the items in the transaction
/// cannot exceed 4 MB"),
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>.
///
/// Transactions hold at most this many operations.
pub const MAX_TRANSACTION_OPS: usize = 100;
/// Keys per [`Store::get_many`] (DynamoDB's `BatchGetItem`: "up to 100 items").
pub const MAX_BATCH_GET: usize = 100;
/// Largest item: 400 KB, counted by [`item_size`].
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Largest transaction: 4 MB, its puts' item sizes plus its deletes' and checks' key sizes
/// (what a delete removes is not known before it runs).
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// A query page stops at the item that brings it to 1 MB (DynamoDB's `Query` reads at most
/// 1 MB a call); follow [`Page::next`] for the rest.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// A DynamoDB-like single-table store.
#[async_trait]
pub trait Store: Send + Sync {
    /// The live item at this key.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;
    /// The live items at these keys (at most [`MAX_BATCH_GET`], distinct), absent ones left
    /// out, in any order: one `BatchGetItem` on DynamoDB.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            items.extend(self.get(pk, sk).await?);
        }
        Ok(items)
    }
    /// Writes `item` if `cond` holds (and it is at most [`MAX_ITEM_BYTES`]); returns the new version.
    async fn put(&self, item: Item, cond: Cond) -> Result<u64, StoreError>;
    /// Deletes the item at this key if `cond` holds; deleting nothing is not an error under `Always`.
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError>;
    /// One page of a prefix query.
    async fn query(&self, query: &Query) -> Result<Page, StoreError>;
    /// Applies every operation or none (at most [`MAX_TRANSACTION_OPS`] and
    /// [`MAX_TRANSACTION_BYTES`], distinct keys).
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
}

/// Refuses an item over [`MAX_ITEM_BYTES`], the same way on every backend.
pub fn check_item(item: &Item) -> Result<(), StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge { what: format!("item {}/{}", item.pk, item.sk), size, limit: MAX_ITEM_BYTES });
    }
    Ok(())
}

/// Checks a transaction's shape and sizes the same way on every backend.
pub fn validate_transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
        return Err(StoreError::Invalid(format!("a transaction holds 1 to {MAX_TRANSACTION_OPS} operations, not {}", ops.len())));
    }
    let mut keys = std::collections::HashSet::with_capacity(ops.len());
    let mut total = 0;
    for op in ops {
        let key = op.key();
        if !keys.insert(key) {
            return Err(StoreError::Invalid(format!("two operations on {}/{}", key.0, key.1)));
        }
        total += op.size();
        if let WriteOp::Put { item, .. } = op {
            check_item(item)?;
        }
    }
    if total > MAX_TRANSACTION_BYTES {
        let what = format!("transaction of {} operations", ops.len());
        return Err(StoreError::TooLarge { what, size: total, limit: MAX_TRANSACTION_BYTES });
    }
    Ok(())
}

/// Splits writes into transactions within [`MAX_TRANSACTION_OPS`] and
/// [`MAX_TRANSACTION_BYTES`], in order (for writers that need each item written, not all of
/// them at once). An item over [`MAX_ITEM_BYTES`] stays in a chunk, for the store to refuse.
pub fn transaction_chunks(ops: Vec<WriteOp>) -> Vec<Vec<WriteOp>> {
    let mut chunks: Vec<Vec<WriteOp>> = Vec::new();
    let mut current: Vec<WriteOp> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let size = op.size();
        if !current.is_empty() && (current.len() == MAX_TRANSACTION_OPS || bytes + size > MAX_TRANSACTION_BYTES) {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(op);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

impl WriteOp {
    /// The key the operation touches.
    pub fn key(&self) -> (&str, &str) {
        match self {
            WriteOp::Put { item, .. } => (&item.pk, &item.sk),
            WriteOp::Delete { pk, sk, .. } | WriteOp::Check { pk, sk, .. } => (pk, sk),
        }
    }

    /// The operation's share of its transaction's size (see [`MAX_TRANSACTION_BYTES`]).
    pub fn size(&self) -> usize {
        match self {
            WriteOp::Put { item, .. } => item_size(item),
            WriteOp::Delete { pk, sk, .. } | WriteOp::Check { pk, sk, .. } => key_size(pk, sk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(sk: usize, body_len: usize) -> WriteOp {
        WriteOp::Put { item: Item::new("p", format!("{sk:03}"), "x".repeat(body_len)), cond: Cond::Always }
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let small: Vec<WriteOp> = (0..250).map(|i| put(i, 10)).collect();
        let sizes: Vec<usize> = transaction_chunks(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let big: Vec<WriteOp> = (0..25).map(|i| put(i, 300 * 1024)).collect();
        let chunks = transaction_chunks(big);
        assert!(chunks.iter().all(|c| validate_transaction(c).is_ok()), "each chunk is a valid transaction");
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 25);
        assert_eq!(chunks[0].len(), 13, "13 items of 300 KiB fit in 4 MiB, 14 do not");
    }

    #[test]
    fn over_limit_items_and_transactions_are_too_large() {
        let body = MAX_ITEM_BYTES - item_size(&Item::new("p", "001", ""));
        assert!(validate_transaction(&[put(1, body)]).is_ok(), "an item of exactly 400 KB");
        match validate_transaction(&[put(1, body + 1)]) {
            Err(StoreError::TooLarge { size, limit, .. }) => assert_eq!((size, limit), (MAX_ITEM_BYTES + 1, MAX_ITEM_BYTES)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let many: Vec<WriteOp> = (0..11).map(|i| put(i, body)).collect();
        assert!(matches!(validate_transaction(&many), Err(StoreError::TooLarge { limit: MAX_TRANSACTION_BYTES, .. })));
    }
}
