//! The `Store` port: a single-table key-value store with DynamoDB's semantics.
//!
//! Every record lives under a partition key `pk` and a sort key `sk`, may carry one
//! secondary index entry (`gsi1pk`/`gsi1sk`) and an expiry (`expires_at`, epoch seconds:
//! an expired item reads as absent everywhere, before any background deletion).
//! Each write bumps the item's `version`, which conditional writes compare against.

use async_trait::async_trait;

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
    /// A transaction too large or with two operations on one key.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A cursor that did not come from this query.
    #[error("invalid cursor")]
    BadCursor,
    /// The backend failed (I/O, network, throttling); the operation may be retried.
    #[error("store backend: {0}")]
    Backend(String),
}

/// Transactions hold at most this many operations (DynamoDB's limit).
pub const MAX_TRANSACTION_OPS: usize = 100;

/// A DynamoDB-like single-table store.
#[async_trait]
pub trait Store: Send + Sync {
    /// The live item at this key.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;
    /// Writes `item` if `cond` holds; returns the new version.
    async fn put(&self, item: Item, cond: Cond) -> Result<u64, StoreError>;
    /// Deletes the item at this key if `cond` holds; deleting nothing is not an error under `Always`.
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError>;
    /// One page of a prefix query.
    async fn query(&self, query: &Query) -> Result<Page, StoreError>;
    /// Applies every operation or none (at most [`MAX_TRANSACTION_OPS`], distinct keys).
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
}

/// Checks a transaction's shape the same way on every backend.
pub fn validate_transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
        return Err(StoreError::Invalid(format!("a transaction holds 1 to {MAX_TRANSACTION_OPS} operations, not {}", ops.len())));
    }
    let mut keys = std::collections::HashSet::with_capacity(ops.len());
    for op in ops {
        let key = op.key();
        if !keys.insert(key) {
            return Err(StoreError::Invalid(format!("two operations on {}/{}", key.0, key.1)));
        }
    }
    Ok(())
}

impl WriteOp {
    /// The key the operation touches.
    pub fn key(&self) -> (&str, &str) {
        match self {
            WriteOp::Put { item, .. } => (&item.pk, &item.sk),
            WriteOp::Delete { pk, sk, .. } | WriteOp::Check { pk, sk, .. } => (pk, sk),
        }
    }
}
