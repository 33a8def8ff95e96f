//! The embedded `Store`: one SQLite file in WAL mode.
//!
//! Every write is its own transaction, begun IMMEDIATE (it takes the write lock first, so two
//! processes wait for each other instead of failing on a read-to-write upgrade); a `kill -9`
//! leaves the last committed state intact. Several processes (`forcelink dev` and an admin
//! verb) may share the file.
//! Semantics match the DynamoDB backend: versions, conditions, TTL on read, prefix queries,
//! atomic multi-item writes, and DynamoDB's size limits (items, transactions, 1 MB pages).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::ports::BackendError;
use crate::ports::store::{
    Cond, Index, Item, MAX_PAGE_BYTES, Page, Query, Store, StoreError, WriteOp, check_item, item_size, validate_transaction,
};

/// The embedded store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    _checkpointer: Checkpointer,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    ttl INTEGER,
    v INTEGER NOT NULL,
    d TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk) WHERE gsi1pk IS NOT NULL;
";

/// Opens a SQLite connection tuned for forcelink's embedded files.
pub(crate) fn open_connection(path: &Path, schema: &str) -> Result<Connection, rusqlite::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL + NORMAL: a commit survives a process crash (kill -9); FULL would also survive power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // The [`Checkpointer`] copies the WAL back; the automatic checkpoint is only a backstop.
    conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_BACKSTOP)?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// WAL pages (4 KiB) after which a commit checkpoints by itself (the checkpointer is stuck).
const AUTOCHECKPOINT_BACKSTOP: i64 = 16_384;
/// How often the checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Checkpoints a WAL file from a background thread, so that no commit pays for copying the
/// WAL back into the database and syncing it: SQLite's automatic checkpoint runs inside the
/// commit that crosses its threshold, which made one request in a hundred several ms slower.
/// A `PASSIVE` checkpoint never blocks readers or writers. The thread stops on drop.
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub(crate) fn start(path: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path: PathBuf = path.to_path_buf();
        let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
            let conn = match Connection::open(&path) {
                Ok(c) => c,
                Err(e) => {
                    return tracing::warn!(path = %path.display(), error = %e, "no WAL checkpointer; commits checkpoint by themselves");
                }
            };
            let _ = conn.busy_timeout(Duration::from_millis(100));
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(path = %path.display(), error = %e, "WAL checkpoint skipped");
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no WAL checkpointer thread; commits checkpoint by themselves");
        }
        Self { stop }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(BackendError::new("SQLite", e))
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl SqliteStore {
    /// Opens (creating if needed) the store file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_connection(path, SCHEMA).map_err(backend)?;
        Ok(Self { conn: Mutex::new(conn), _checkpointer: Checkpointer::start(path) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Backend(BackendError::msg("store lock poisoned")))?;
        f(&mut conn)
    }
}

/// The live version at a key, if any.
fn live_version(tx: &Transaction<'_>, pk: &str, sk: &str, now: i64) -> Result<Option<u64>, StoreError> {
    tx.query_row("SELECT v, ttl FROM items WHERE pk = ?1 AND sk = ?2", params![pk, sk], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
    })
    .optional()
    .map_err(backend)
    .map(|row| row.filter(|(_, ttl)| ttl.is_none_or(|t| t > now)).map(|(v, _)| v as u64))
}

/// The stored version at a key, live or expired (versions keep rising across expiry).
fn stored_version(tx: &Transaction<'_>, pk: &str, sk: &str) -> Result<u64, StoreError> {
    tx.query_row("SELECT v FROM items WHERE pk = ?1 AND sk = ?2", params![pk, sk], |r| r.get::<_, i64>(0))
        .optional()
        .map_err(backend)
        .map(|v| v.unwrap_or(0) as u64)
}

fn check(tx: &Transaction<'_>, pk: &str, sk: &str, cond: Cond, now: i64) -> Result<(), StoreError> {
    let ok = match cond {
        Cond::Always => true,
        Cond::NotExists => live_version(tx, pk, sk, now)?.is_none(),
        Cond::Exists => live_version(tx, pk, sk, now)?.is_some(),
        Cond::Version(want) => live_version(tx, pk, sk, now)? == Some(want),
    };
    if ok { Ok(()) } else { Err(StoreError::ConditionFailed { pk: pk.into(), sk: sk.into() }) }
}

fn apply(tx: &Transaction<'_>, op: &WriteOp, now: i64) -> Result<u64, StoreError> {
    match op {
        WriteOp::Put { item, cond } => {
            check(tx, &item.pk, &item.sk, *cond, now)?;
            let version = stored_version(tx, &item.pk, &item.sk)? + 1;
            let (gpk, gsk) = item.gsi1.as_ref().map(|(p, s)| (Some(p.as_str()), Some(s.as_str()))).unwrap_or((None, None));
            tx.execute(
                "INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, ttl, v, d) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![item.pk, item.sk, gpk, gsk, item.expires_at, version as i64, item.body],
            )
            .map_err(backend)?;
            Ok(version)
        }
        WriteOp::Delete { pk, sk, cond } => {
            check(tx, pk, sk, *cond, now)?;
            tx.execute("DELETE FROM items WHERE pk = ?1 AND sk = ?2", params![pk, sk]).map_err(backend)?;
            Ok(0)
        }
        WriteOp::Check { pk, sk, cond } => {
            check(tx, pk, sk, *cond, now)?;
            Ok(0)
        }
    }
}

fn row_to_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let gpk: Option<String> = r.get(2)?;
    let gsk: Option<String> = r.get(3)?;
    Ok(Item {
        pk: r.get(0)?,
        sk: r.get(1)?,
        gsi1: gpk.zip(gsk),
        expires_at: r.get(4)?,
        version: r.get::<_, i64>(5)? as u64,
        body: r.get(6)?,
    })
}

/// An upper bound for the keys starting with `prefix`: `prefix` and the largest scalar value.
fn prefix_end(prefix: &str) -> String {
    let mut end = String::with_capacity(prefix.len() + 4);
    end.push_str(prefix);
    end.push(char::MAX);
    end
}

/// Cursor: base64url of the index name and the last returned (index pk, index sk, primary pk, primary sk).
fn encode_cursor(item: &Item, index: Index) -> String {
    let (name, ipk, isk) = match (index, &item.gsi1) {
        (Index::Gsi1, Some((p, s))) => ("gsi1", p.as_str(), s.as_str()),
        _ => ("primary", item.pk.as_str(), item.sk.as_str()),
    };
    B64.encode(serde_json::json!([name, ipk, isk, item.pk, item.sk]).to_string())
}

fn decode_cursor(cursor: &str, query: &Query) -> Result<(String, String, String), StoreError> {
    let raw = B64.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let parts: Vec<String> = serde_json::from_slice(&raw).map_err(|_| StoreError::BadCursor)?;
    let want = match query.index {
        Index::Primary => "primary",
        Index::Gsi1 => "gsi1",
    };
    match <[String; 5]>::try_from(parts) {
        Ok([name, ipk, isk, pk, sk]) if name == want && ipk == query.pk && isk.starts_with(&query.prefix) => Ok((isk, pk, sk)),
        _ => Err(StoreError::BadCursor),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let now = now_secs();
        self.with(|conn| {
            conn.prepare_cached("SELECT pk, sk, gsi1pk, gsi1sk, ttl, v, d FROM items WHERE pk = ?1 AND sk = ?2")
                .and_then(|mut st| st.query_row(params![pk, sk], row_to_item).optional())
                .map_err(backend)
                .map(|item| item.filter(|i| !i.is_expired(now)))
        })
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<u64, StoreError> {
        check_item(&item)?;
        let now = now_secs();
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let version = apply(&tx, &WriteOp::Put { item, cond }, now)?;
            tx.commit().map_err(backend)?;
            Ok(version)
        })
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let now = now_secs();
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            apply(&tx, &WriteOp::Delete { pk: pk.into(), sk: sk.into(), cond }, now)?;
            tx.commit().map_err(backend)
        })
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let now = now_secs();
        let limit = query.limit.clamp(1, 1000);
        let after = query.after.as_deref().map(|c| decode_cursor(c, query)).transpose()?;
        let (ipk, isk) = match query.index {
            Index::Primary => ("pk", "sk"),
            Index::Gsi1 => ("gsi1pk", "gsi1sk"),
        };
        // Order by the index key, then the primary key, so equal gsi1sk values page stably.
        let (cmp, dir) = if query.reverse { ("<", "DESC") } else { (">", "ASC") };
        let after_clause = match query.index {
            _ if after.is_none() => String::new(),
            Index::Primary => format!("AND sk {cmp} ?4"),
            Index::Gsi1 => format!("AND (gsi1sk, pk, sk) {cmp} (?4, ?5, ?6)"),
        };
        let sql = format!(
            "SELECT pk, sk, gsi1pk, gsi1sk, ttl, v, d FROM items WHERE {ipk} = ?1 AND {isk} >= ?2 AND {isk} < ?3 {after_clause} \
             AND (ttl IS NULL OR ttl > {now}) ORDER BY {isk} {dir}, pk {dir}, sk {dir} LIMIT {}",
            limit + 1
        );
        let end = prefix_end(&query.prefix);
        self.with(|conn| {
            let mut st = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = match &after {
                None => st.query_map(params![query.pk, query.prefix, end], row_to_item),
                Some((isk_after, pk_after, sk_after)) => match query.index {
                    Index::Primary => st.query_map(params![query.pk, query.prefix, end, sk_after], row_to_item),
                    Index::Gsi1 => st.query_map(params![query.pk, query.prefix, end, isk_after, pk_after, sk_after], row_to_item),
                },
            }
            .map_err(backend)?;
            // Expired rows never count against the page: a page is full while more items remain.
            // As on DynamoDB, a page also ends at the item that brings it to 1 MB.
            let mut items = Vec::with_capacity(limit.min(128));
            let mut bytes = 0;
            let mut more = false;
            for row in rows {
                let item = row.map_err(backend)?;
                if items.len() == limit || bytes >= MAX_PAGE_BYTES {
                    more = true;
                    break;
                }
                bytes += item_size(&item);
                items.push(item);
            }
            let next = if more { items.last().map(|l| encode_cursor(l, query.index)) } else { None };
            Ok(Page { items, next })
        })
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let now = now_secs();
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            for op in &ops {
                apply(&tx, op, now)?;
            }
            tx.commit().map_err(backend)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;
    use crate::salesforce::SfError;

    /// The SQLite error stays reachable through every layer that carries a store failure.
    #[test]
    fn a_sqlite_failure_keeps_its_cause_up_to_sf_error() {
        let e = SfError::from(backend(rusqlite::Error::QueryReturnedNoRows));
        assert_eq!(e.to_string(), "store: store backend: SQLite: Query returned no rows");
        let mut cause = e.source();
        while let Some(c) = cause.filter(|c| c.downcast_ref::<rusqlite::Error>().is_none()) {
            cause = c.source();
        }
        assert!(cause.is_some(), "rusqlite::Error not in the chain of {e:?}");
    }
}
