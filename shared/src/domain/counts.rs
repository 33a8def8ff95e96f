//! Typed run counters: [`Counter`] names each count a run report or checkpoint keeps, so a
//! misspelt counter does not compile; [`Counts`] holds them. Stored as a JSON object keyed by
//! the counters' snake_case names, the same text as before they were typed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`Counter`] with each variant's stored name, in one place.
macro_rules! counters {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// One count of a run.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Counter {
            $($(#[$doc])* $variant,)*
        }

        impl Counter {
            /// The name it is stored and shown under.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The counter stored under `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

counters! {
    /// Salesforce API calls the run made.
    ApiCalls = "api_calls",
    /// Deliveries of one workflow run (1 for the first).
    Attempts = "attempts",
    /// Workflow tasks that succeeded.
    TasksSucceeded = "tasks_succeeded",
    /// Export events taken from the queue.
    Events = "events",
    /// Export events older than what Salesforce already has.
    Stale = "stale",
    /// Export events already done.
    Duplicate = "duplicate",
    /// Export events held until their connection is connected.
    Held = "held",
    /// Held export events released.
    Released = "released",
    /// Export events left for a later batch.
    Deferred = "deferred",
    /// Export events replaced by a newer one for the same record in the batch.
    Superseded = "superseded",
    /// Salesforce records created.
    Created = "created",
    /// Records updated (in Salesforce, or in forcelink's directory or documents).
    Updated = "updated",
    /// Rows sent again after a transient failure.
    Retried = "retried",
    /// Rows queued again after a transient failure.
    Requeued = "requeued",
    /// Rows that failed for good.
    Failed = "failed",
    /// Historical rows whose kind has no export mapping.
    NoMapping = "no_mapping",
    /// Historical rows that do not validate.
    Invalid = "invalid",
    /// Records read from Salesforce.
    Fetched = "fetched",
    /// Records added.
    Added = "added",
    /// Inactive users added (kept, never shown as active).
    AddedInactive = "added_inactive",
    /// Records read whose owned fields did not change.
    Unchanged = "unchanged",
    /// Users deactivated.
    Deactivated = "deactivated",
    /// Directory writes made.
    DirectoryWrites = "directory_writes",
    /// Document writes made.
    DocumentWrites = "document_writes",
    /// Managers looked up outside the job's filter.
    ManagersLookedUp = "managers_looked_up",
    /// Manager cycles found (and broken).
    Cycles = "cycles",
    /// Groups added.
    GroupsAdded = "groups_added",
    /// Groups whose members changed.
    GroupsChanged = "groups_changed",
    /// Groups removed.
    GroupsRemoved = "groups_removed",
    /// Records that could not be taken in.
    Errors = "errors",
    /// Changes a workflow already received.
    Delivered = "delivered",
    /// Changes a workflow missed.
    Missed = "missed",
    /// Missed changes queued for the workflow.
    Queued = "queued",
    /// Missed changes already queued by an earlier run.
    AlreadyQueued = "already_queued",
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A run's counts, by counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<Counter, u64>);

impl Counts {
    /// Adds `n` to a counter (recording it even when `n` is 0).
    pub fn add(&mut self, counter: Counter, n: u64) {
        *self.0.entry(counter).or_default() += n;
    }

    /// Sets a counter.
    pub fn set(&mut self, counter: Counter, n: u64) {
        self.0.insert(counter, n);
    }

    /// A counter, if it was recorded.
    pub fn get(&self, counter: Counter) -> Option<u64> {
        self.0.get(&counter).copied()
    }

    /// A counter, 0 when not recorded.
    pub fn count(&self, counter: Counter) -> u64 {
        self.get(counter).unwrap_or(0)
    }

    /// Every recorded counter.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        self.0.iter().map(|(c, n)| (*c, *n))
    }

    /// Whether no counter was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `name=n` pairs, space-separated.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (counter, n)) in self.iter().enumerate() {
            write!(f, "{}{counter}={n}", if i == 0 { "" } else { " " })?;
        }
        Ok(())
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(c, n)| (c.name(), n)))
    }
}

/// Reads the stored object; a name this version does not know (written by a newer one) is
/// dropped with a warning rather than failing the whole record.
impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let named = BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut counts = Self::default();
        for (name, n) in named {
            match Counter::from_name(&name) {
                Some(counter) => counts.set(counter, n),
                None => tracing::warn!(counter = %name, "unknown run counter dropped"),
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        let text = r#"{"already_queued":2,"api_calls":7,"directory_writes":0,"tasks_succeeded":1}"#;
        let counts: Counts = serde_json::from_str(text).unwrap();
        assert_eq!(counts.get(Counter::DirectoryWrites), Some(0));
        assert_eq!((counts.count(Counter::ApiCalls), counts.count(Counter::AlreadyQueued)), (7, 2));
        assert_eq!(counts.get(Counter::Added), None);
        let again: serde_json::Value = serde_json::to_value(&counts).unwrap();
        assert_eq!(again, serde_json::from_str::<serde_json::Value>(text).unwrap());
        assert_eq!(counts.to_string(), "api_calls=7 tasks_succeeded=1 directory_writes=0 already_queued=2");
    }

    #[test]
    fn an_unknown_name_is_dropped_not_fatal() {
        let counts: Counts = serde_json::from_str(r#"{"fetched":3,"from_the_future":9}"#).unwrap();
        assert_eq!(counts.iter().collect::<Vec<_>>(), vec![(Counter::Fetched, 3)]);
    }
}
