//! Scriptable per-org faults: latency, 5xx, hangs, request limits, row locks, query timeouts.
//! Decisions use the simulator's seeded RNG so a test run is repeatable.

use crate::error::ApiError;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Fault settings of one org (all off by default). Rates are probabilities in `0.0..=1.0`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added latency on every API answer, in real milliseconds.
    pub latency_ms: u64,
    /// Share of API calls answered `503 SERVER_UNAVAILABLE`.
    pub error_5xx_rate: f64,
    /// Share of API calls that hang `timeout_ms` and then drop the connection.
    pub timeout_rate: f64,
    /// How long a hang lasts, real milliseconds (default 30 s when 0).
    pub timeout_ms: u64,
    /// Daily API request cap: calls beyond it get `403 REQUEST_LIMIT_EXCEEDED`.
    pub request_limit: Option<u64>,
    /// Share of writes failing with `UNABLE_TO_LOCK_ROW` (per row for collections).
    pub lock_row_rate: f64,
    /// Share of queries failing with `QUERY_TIMEOUT`.
    pub query_timeout_rate: f64,
    /// Share of calls failing with `403 REQUEST_LIMIT_EXCEEDED` `ConcurrentPerOrgLongTxn`.
    pub concurrent_limit_rate: f64,
    /// The org's API is off (an edition without it, or the user lost "API Enabled"): every
    /// REST call answers `403 API_DISABLED_FOR_ORG`.
    pub api_disabled: bool,
    /// The org's IP restrictions refuse the caller: refreshes answer `invalid_grant` `ip restricted`.
    pub ip_restricted: bool,
    /// Query pages end cut short: `done: false` and no `nextRecordsUrl` (an answer truncated
    /// in transit or by a proxy).
    pub cut_query_pages: bool,
}

/// What the fault layer decided for a request.
#[derive(Debug)]
pub enum Decision {
    /// Go ahead.
    Proceed,
    /// Answer with this error.
    Fail(ApiError),
    /// Hang this long, then drop the connection.
    Hang(std::time::Duration),
}

/// Rolls a probability.
pub fn roll(rng: &mut impl Rng, rate: f64) -> bool {
    rate > 0.0 && rng.random::<f64>() < rate
}

impl Faults {
    /// Decides the fate of one API call before it runs.
    pub fn decide(&self, rng: &mut impl Rng) -> Decision {
        if self.api_disabled {
            return Decision::Fail(ApiError::new(403, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization."));
        }
        if roll(rng, self.timeout_rate) {
            let ms = if self.timeout_ms == 0 { 30_000 } else { self.timeout_ms };
            return Decision::Hang(std::time::Duration::from_millis(ms));
        }
        if roll(rng, self.error_5xx_rate) {
            return Decision::Fail(ApiError::new(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again later"));
        }
        if roll(rng, self.concurrent_limit_rate) {
            return Decision::Fail(ApiError::new(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."));
        }
        Decision::Proceed
    }
}

/// `UNABLE_TO_LOCK_ROW` as Salesforce words it.
pub fn lock_row_error() -> ApiError {
    ApiError::bad("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records")
}

/// `QUERY_TIMEOUT` as Salesforce words it.
pub fn query_timeout_error() -> ApiError {
    ApiError::bad("QUERY_TIMEOUT", "Your query request was running for too long.")
}

/// The daily cap error.
pub fn request_limit_error() -> ApiError {
    ApiError::new(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn seeded_decisions_repeat() {
        let f = Faults { error_5xx_rate: 0.5, ..Faults::default() };
        let run = || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            (0..50).map(|_| matches!(f.decide(&mut rng), Decision::Fail(_))).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(matches!(Faults::default().decide(&mut rng), Decision::Proceed));
    }
}
