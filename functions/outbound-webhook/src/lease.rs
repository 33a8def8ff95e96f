//! An attempt's hold on a notification's run: the [`RunState`] as this attempt last read or
//! wrote it. Every write of the state is conditional on that version, and the first one takes
//! the lease (piggybacked on the first task's own write, so it costs no call of its own): of
//! two concurrent attempts only one writes, and an attempt that lost the run stops without
//! touching the report.

use std::time::Duration;

use forcelink::domain::record::Record;
use forcelink::intake::{Lease, RunState};
use forcelink::ports::{Cond, Store, StoreError, WriteOp};

use crate::tasks::TaskError;

/// How long an attempt holds a run (longer than the function's timeout).
pub const LEASE: Duration = Duration::from_secs(120);

/// A run's state, held by this attempt.
pub struct Held {
    pub state: RunState,
    /// The stored version (`None`: not stored yet).
    version: Option<u64>,
    /// The email task an earlier attempt left under way: its outcome is unknown.
    pub interrupted_send: Option<usize>,
    /// `state.sending` as last written by this attempt.
    written_sending: Option<usize>,
}

impl Held {
    /// Takes the run for a new attempt at `now` (epoch seconds), unless another attempt holds
    /// a live lease (`None`). Nothing is written yet.
    pub fn take(state: RunState, version: Option<u64>, now: i64) -> Option<Self> {
        if state.lease.is_some_and(|l| l.until > now) {
            return None;
        }
        let mut state = state;
        let interrupted_send = state.sending.take();
        state.attempts += 1;
        state.lease = Some(Lease { attempt: state.attempts, until: now + LEASE.as_secs() as i64 });
        Some(Self { state, version, interrupted_send, written_sending: None })
    }

    /// The operation writing the state as it is now, if this attempt still holds it.
    pub fn write_op(&self) -> Result<WriteOp, TaskError> {
        let cond = self.version.map_or(Cond::NotExists, Cond::Version);
        Ok(WriteOp::Put { item: self.state.to_item()?, cond })
    }

    /// Writes the state together with `ops`, in one transaction.
    pub async fn transact(&mut self, store: &dyn Store, mut ops: Vec<WriteOp>) -> Result<(), StoreError> {
        ops.push(self.write_op().map_err(|e| StoreError::Invalid(e.to_string()))?);
        store.transact(ops).await?;
        // Versions rise by one a write; a state first written has version 1.
        self.version = Some(self.version.map_or(1, |v| v + 1));
        self.written_sending = self.state.sending;
        Ok(())
    }

    /// Makes sure the stored state says task `index`'s send may be under way, before it starts.
    pub async fn announce_send(&mut self, store: &dyn Store, index: usize) -> Result<(), TaskError> {
        self.state.sending = Some(index);
        if self.written_sending == Some(index) {
            return Ok(());
        }
        self.save(store).await
    }

    /// Writes the state alone.
    pub async fn save(&mut self, store: &dyn Store) -> Result<(), TaskError> {
        match self.transact(store, Vec::new()).await {
            Err(StoreError::ConditionFailed { .. }) => Err(lost()),
            other => Ok(other?),
        }
    }

    /// Whether the stored state is still the one this attempt wrote last.
    pub async fn still_held(&self, store: &dyn Store) -> Result<bool, TaskError> {
        let stored = store.get(&self.state.pk(), &self.state.sk()).await?;
        Ok(stored.map(|i| i.version) == self.version)
    }
}

/// The error of an attempt that lost its run to another.
pub fn lost() -> TaskError {
    TaskError::Transient("another attempt took this run over".into())
}
