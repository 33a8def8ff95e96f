//! The export pusher's knobs, from `FORCELINK_EXPORT_*` environment variables (all optional).

use std::time::Duration;

/// Retry, budget and batching settings.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Share of the org's daily API requests past which backfill pauses and continuous export
    /// slows down (`FORCELINK_EXPORT_BUDGET_SHARE`, default 0.8).
    pub budget_share: f64,
    /// How long an org's work pauses after `REQUEST_LIMIT_EXCEEDED` (TotalRequests)
    /// (`FORCELINK_EXPORT_LIMIT_PAUSE_SECS`, default 1800).
    pub limit_pause: Duration,
    /// First SQS retry delay of a transient failure, doubled per receive
    /// (`FORCELINK_EXPORT_RETRY_BASE_SECS`, default 30), capped at `retry_max` (900).
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Attempts at a transient failure within one invocation before handing it back to SQS
    /// (`FORCELINK_EXPORT_ATTEMPTS`, default 4), with this first pause (doubling).
    pub attempts: u32,
    pub attempt_pause: Duration,
    /// Over budget, at most this many records per invocation; the rest wait `slow_delay`.
    pub slow_records: usize,
    pub slow_delay: Duration,
    /// Receives before SQS dead-letters a message (`FORCELINK_QUEUE_MAX_RECEIVES`, default 5).
    pub max_receives: u32,
    /// Held events released per invocation.
    pub flush_batch: usize,
    /// Events one invocation takes on (`FORCELINK_EXPORT_MAX_EVENTS`, default 5000, about 25
    /// Collections calls): messages past it go straight back to the queue for the next
    /// invocation, so a batch of large messages cannot outrun the function's timeout. A
    /// message on its last receive is always taken, so deferral never dead-letters it.
    pub max_events: usize,
    /// First Bulk API job poll interval (`FORCELINK_EXPORT_BULK_POLL_MS`, default 1000).
    pub bulk_poll: Duration,
    /// Rows per Bulk API ingest job (`FORCELINK_EXPORT_BULK_JOB_ROWS`, default 150000).
    pub bulk_job_rows: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl Tuning {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From a lookup function (tests); unparsable values fall back to the default with a warning.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let num = |name: &str, default: f64| -> f64 {
            match get(name).map(|v| v.trim().parse::<f64>()) {
                None => default,
                Some(Ok(v)) if v.is_finite() && v >= 0.0 => v,
                Some(_) => {
                    tracing::warn!(setting = name, "not a non-negative number; using the default");
                    default
                }
            }
        };
        Self {
            budget_share: num("FORCELINK_EXPORT_BUDGET_SHARE", 0.8).min(1.0),
            limit_pause: Duration::from_secs_f64(num("FORCELINK_EXPORT_LIMIT_PAUSE_SECS", 1800.0)),
            retry_base: Duration::from_secs_f64(num("FORCELINK_EXPORT_RETRY_BASE_SECS", 30.0)),
            retry_max: Duration::from_secs(900),
            attempts: num("FORCELINK_EXPORT_ATTEMPTS", 4.0).clamp(1.0, 20.0) as u32,
            attempt_pause: Duration::from_millis(num("FORCELINK_EXPORT_ATTEMPT_PAUSE_MS", 200.0) as u64),
            slow_records: 200,
            slow_delay: Duration::from_secs(60),
            max_receives: num("FORCELINK_QUEUE_MAX_RECEIVES", 5.0).clamp(1.0, 1000.0) as u32,
            flush_batch: 2000,
            max_events: num("FORCELINK_EXPORT_MAX_EVENTS", 5000.0).max(1.0) as usize,
            bulk_poll: Duration::from_millis(num("FORCELINK_EXPORT_BULK_POLL_MS", 1000.0) as u64),
            bulk_job_rows: num("FORCELINK_EXPORT_BULK_JOB_ROWS", 150_000.0).max(1.0) as usize,
        }
    }

    /// SQS delay before the `receive_count`+1-th delivery of a transiently failed message.
    pub fn retry_delay(&self, receive_count: u32) -> Duration {
        let factor = 2u32.saturating_pow(receive_count.saturating_sub(1).min(16));
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_caps() {
        let t = Tuning::default();
        assert_eq!(t.retry_delay(1), Duration::from_secs(30));
        assert_eq!(t.retry_delay(2), Duration::from_secs(60));
        assert_eq!(t.retry_delay(10), Duration::from_secs(900));
        let t = Tuning::from_lookup(|k| (k == "FORCELINK_EXPORT_BUDGET_SHARE").then(|| "x".into()));
        assert!((t.budget_share - 0.8).abs() < 1e-9);
    }
}
