//! The runner's deadline: the Lambda invocation's end (from its `Context`), or for `forcelink
//! dev` and tests ([`crate::runner::pump`]) the function's configured timeout from now.
//! A notification starts only while at least [`RESERVE`] is left, so one that starts can
//! finish; the rest of its message is reported as a batch failure and comes back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// outbound-webhook's timeout in template.yaml (`Globals.Function.Timeout`).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The least time left in which a notification is started: its store calls and one send.
pub const RESERVE: Duration = Duration::from_secs(5);

/// When the invocation must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline `within` from now.
    pub fn after(within: Duration) -> Self {
        Self(Instant::now() + within)
    }

    /// A Lambda `Context` deadline (epoch milliseconds).
    pub fn from_epoch_ms(ms: u64) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::after(Duration::from_millis(ms).saturating_sub(now))
    }

    /// Whether enough time is left to start a notification.
    pub fn allows_start(&self) -> bool {
        self.0.saturating_duration_since(Instant::now()) >= RESERVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_only_with_the_reserve_left() {
        assert!(Deadline::after(RESERVE + Duration::from_secs(1)).allows_start());
        assert!(!Deadline::after(RESERVE - Duration::from_millis(1)).allows_start());
        let past = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 - 1;
        assert!(!Deadline::from_epoch_ms(past).allows_start());
    }

    /// The timeout `pump` assumes is the one template.yaml gives the function.
    #[test]
    fn matches_the_template() {
        let template = include_str!("../../../template.yaml");
        let globals = &template[template.find("\nGlobals:").expect("Globals")..];
        let timeout = globals.lines().find_map(|l| l.trim().strip_prefix("Timeout: ")).expect("Globals.Function.Timeout");
        assert_eq!(timeout.parse::<u64>().ok(), Some(FUNCTION_TIMEOUT.as_secs()));
        let function = &template[template.find("  OutboundWebhookFunction:").expect("the function")..];
        let own = &function[..function[1..].find("\n  ExportPusherFunction:").unwrap_or(function.len() - 1)];
        assert!(!own.contains("\n      Timeout:"), "outbound-webhook sets its own Timeout: update FUNCTION_TIMEOUT");
    }
}
