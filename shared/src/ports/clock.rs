//! The `Clock` port: the time, so tests can move it.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Now, as epoch seconds.
    fn epoch_secs(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told (tests, simulations).
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn at(at: OffsetDateTime) -> Self {
        Self { nanos: AtomicI64::new(at.unix_timestamp_nanos() as i64) }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.nanos.fetch_add(by.as_nanos() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.nanos.load(Ordering::SeqCst) as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
