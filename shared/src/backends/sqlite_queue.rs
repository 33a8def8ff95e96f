//! The embedded `Queue`: a durable queue with SQS semantics in one SQLite file.
//!
//! Several named queues share the file (e.g. `export` and its dead-letter queue
//! `export-dlq`). A receive hides messages for the visibility timeout and issues a fresh
//! receipt handle; a message received `max_receives` times moves to the dead-letter queue
//! on its next receive, as SQS's redrive policy does. Long polls wake at once on a send
//! from this process and poll the file for sends from other processes.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::Notify;

use crate::backends::sqlite_store::{Checkpointer, open_connection};
use crate::ports::BackendError;
use crate::ports::queue::{Message, Queue, QueueError, Receive, validate_receive, validate_send};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (queue, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at);
CREATE UNIQUE INDEX IF NOT EXISTS messages_receipt ON messages (receipt) WHERE receipt IS NOT NULL;
";

/// A queue's behaviour.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Default visibility timeout of a receive.
    pub visibility: Duration,
    /// Receives after which a message is dead-lettered (SQS's `maxReceiveCount`).
    pub max_receives: u32,
    /// The dead-letter queue's name in the same file; `None` keeps redelivering.
    pub dead_letter: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { visibility: Duration::from_secs(30), max_receives: 5, dead_letter: None }
    }
}

/// One named queue in an embedded queue file.
pub struct SqliteQueue {
    conn: Arc<Mutex<Connection>>,
    name: String,
    config: QueueConfig,
    sent: Arc<Notify>,
    _checkpointer: Arc<Checkpointer>,
}

fn backend(e: rusqlite::Error) -> QueueError {
    QueueError::Backend(BackendError::new("SQLite", e))
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Whether a receipt handle has the shape this queue issues: `{message id}:{32 hex digits}`.
fn well_formed_receipt(handle: &str) -> bool {
    handle
        .rsplit_once(':')
        .is_some_and(|(id, nonce)| uuid::Uuid::parse_str(id).is_ok() && nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How often a long poll re-reads the file for messages sent by other processes.
const POLL_EVERY: Duration = Duration::from_millis(50);

impl SqliteQueue {
    /// Opens the queue `name` in the file at `path`.
    pub fn open(path: &Path, name: &str, config: QueueConfig) -> Result<Self, QueueError> {
        let conn = open_connection(path, SCHEMA).map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            name: name.into(),
            config,
            sent: Arc::new(Notify::new()),
            _checkpointer: Arc::new(Checkpointer::start(path)),
        })
    }

    /// Another named queue in the same file (e.g. the dead-letter queue), sharing the connection.
    pub fn sibling(&self, name: &str, config: QueueConfig) -> Self {
        Self { conn: self.conn.clone(), name: name.into(), config, sent: self.sent.clone(), _checkpointer: self._checkpointer.clone() }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, QueueError>) -> Result<T, QueueError> {
        let mut conn = self.conn.lock().map_err(|_| QueueError::Backend(BackendError::msg("queue lock poisoned")))?;
        f(&mut conn)
    }

    /// One receive attempt without waiting.
    fn receive_now(&self, req: &Receive) -> Result<Vec<Message>, QueueError> {
        let now = now_ms();
        let visibility = req.visibility.unwrap_or(self.config.visibility).as_millis() as i64;
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let mut out = Vec::with_capacity(req.max);
            {
                let mut ready = tx
                    .prepare_cached("SELECT id, body, receive_count FROM messages WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, sent_at, id LIMIT ?3")
                    .map_err(backend)?;
                // Read a little more than asked: some may be dead-lettered instead of delivered.
                let rows = ready
                    .query_map(params![self.name, now, (req.max * 2) as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                for (id, body, count) in rows {
                    if out.len() == req.max {
                        break;
                    }
                    match &self.config.dead_letter {
                        Some(dlq) if count as u32 >= self.config.max_receives => {
                            tx.execute(
                                "UPDATE messages SET queue = ?1, receive_count = 0, receipt = NULL, visible_at = ?2 WHERE queue = ?3 AND id = ?4",
                                params![dlq, now, self.name, id],
                            )
                            .map_err(backend)?;
                        }
                        _ => {
                            let receipt = format!("{id}:{}", uuid::Uuid::new_v4().simple());
                            tx.execute(
                                "UPDATE messages SET receive_count = receive_count + 1, receipt = ?1, visible_at = ?2 WHERE queue = ?3 AND id = ?4",
                                params![receipt, now + visibility, self.name, id],
                            )
                            .map_err(backend)?;
                            out.push(Message { id, body, receipt_handle: receipt, receive_count: count as u32 + 1 });
                        }
                    }
                }
            }
            tx.commit().map_err(backend)?;
            Ok(out)
        })
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send_batch(&self, bodies: &[String], delay: Duration) -> Result<Vec<String>, QueueError> {
        validate_send(bodies, delay)?;
        let now = now_ms();
        let visible_at = now + delay.as_millis() as i64;
        let ids = self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let mut ids = Vec::with_capacity(bodies.len());
            {
                let mut insert = tx
                    .prepare_cached("INSERT INTO messages (queue, id, body, visible_at, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .map_err(backend)?;
                for body in bodies {
                    let id = uuid::Uuid::now_v7().to_string();
                    insert.execute(params![self.name, id, body, visible_at, now]).map_err(backend)?;
                    ids.push(id);
                }
            }
            tx.commit().map_err(backend)?;
            Ok(ids)
        })?;
        self.sent.notify_waiters();
        Ok(ids)
    }

    async fn receive(&self, req: Receive) -> Result<Vec<Message>, QueueError> {
        validate_receive(&req)?;
        let deadline = tokio::time::Instant::now() + req.wait;
        loop {
            let notified = self.sent.notified();
            let got = self.receive_now(&req)?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let nap = POLL_EVERY.min(deadline - now);
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        if !well_formed_receipt(receipt_handle) {
            return Err(QueueError::InvalidReceipt);
        }
        // As on SQS, deleting with a stale handle or deleting twice succeeds.
        self.with(|conn| {
            conn.execute("DELETE FROM messages WHERE queue = ?1 AND receipt = ?2", params![self.name, receipt_handle]).map_err(backend)
        })?;
        Ok(())
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), QueueError> {
        if timeout > Duration::from_secs(12 * 3600) {
            return Err(QueueError::Invalid("visibility exceeds 12 hours".into()));
        }
        let visible_at = now_ms() + timeout.as_millis() as i64;
        let n = self.with(|conn| {
            conn.execute(
                "UPDATE messages SET visible_at = ?1 WHERE queue = ?2 AND receipt = ?3",
                params![visible_at, self.name, receipt_handle],
            )
            .map_err(backend)
        })?;
        if n == 1 { Ok(()) } else { Err(QueueError::InvalidReceipt) }
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        self.with(|conn| {
            conn.query_row("SELECT COUNT(*) FROM messages WHERE queue = ?1", params![self.name], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(backend)
        })
    }
}
