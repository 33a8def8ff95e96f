//! The simulator clock: wall time scaled by a factor plus manual jumps, so tests can compress
//! hours of outbound retries or bulk processing into milliseconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy)]
struct Base {
    real: Instant,
    sim: OffsetDateTime,
    scale: f64,
}

/// A scalable, advanceable clock shared by every part of the simulator.
#[derive(Debug)]
pub struct SimClock {
    base: Mutex<Base>,
}

impl SimClock {
    /// A clock starting at the current wall time, running `scale` times faster than real time.
    pub fn new(scale: f64) -> Self {
        Self { base: Mutex::new(Base { real: Instant::now(), sim: OffsetDateTime::now_utc(), scale: sanitize(scale) }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Base> {
        self.base.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_of(b: &Base) -> OffsetDateTime {
        let real = b.real.elapsed().as_secs_f64() * b.scale;
        b.sim + Duration::from_secs_f64(real)
    }

    /// The simulated now (UTC).
    pub fn now(&self) -> OffsetDateTime {
        Self::now_of(&self.lock())
    }

    /// Milliseconds since the Unix epoch, simulated.
    pub fn now_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Jumps the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut b = self.lock();
        let now = Self::now_of(&b);
        b.real = Instant::now();
        b.sim = now + by;
    }

    /// Changes the speed factor (1.0 = real time).
    pub fn set_scale(&self, scale: f64) {
        let mut b = self.lock();
        let now = Self::now_of(&b);
        b.real = Instant::now();
        b.sim = now;
        b.scale = sanitize(scale);
    }

    /// The current speed factor.
    pub fn scale(&self) -> f64 {
        self.lock().scale
    }

    /// How long, in real time, until `sim_delay` of simulated time has passed.
    pub fn real_for(&self, sim_delay: Duration) -> Duration {
        Duration::from_secs_f64(sim_delay.as_secs_f64() / self.scale())
    }
}

fn sanitize(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 { scale } else { 1.0 }
}

/// Formats a datetime the way REST answers do: `2026-01-01T00:00:00.000+0000`.
pub fn fmt_rest(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Formats a datetime the way SOAP messages do: `2026-01-01T00:00:00.000Z`.
pub fn fmt_soap(t: OffsetDateTime) -> String {
    let mut s = fmt_rest(t);
    s.truncate(23);
    s.push('Z');
    s
}

/// Parses an ISO-8601 datetime (`Z`, `+hh:mm`, `+hhmm`, optional millis) or a date
/// (taken as midnight UTC).
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // +0000 offsets (REST style)
    if s.len() > 5 {
        let (head, tail) = s.split_at(s.len() - 5);
        if (tail.starts_with('+') || tail.starts_with('-')) && tail[1..].bytes().all(|b| b.is_ascii_digit()) {
            let fixed = format!("{head}{}:{}", &tail[..3], &tail[3..]);
            if let Ok(t) = OffsetDateTime::parse(&fixed, &Rfc3339) {
                return Some(t);
            }
        }
    }
    let date = parse_date(s)?;
    Some(date.midnight().assume_utc())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = parse_datetime("2026-01-01T00:00:00Z").expect("parse");
        assert_eq!(fmt_rest(t), "2026-01-01T00:00:00.000+0000");
        assert_eq!(fmt_soap(t), "2026-01-01T00:00:00.000Z");
        let t2 = parse_datetime("2026-01-01T01:00:00.250+01:00").expect("parse");
        assert_eq!(fmt_rest(t2), "2026-01-01T00:00:00.250+0000");
        let t3 = parse_datetime("2026-01-01T00:00:00.000+0000").expect("parse");
        assert_eq!(t3, t);
        assert!(parse_datetime("2026-13-01").is_none());
    }

    #[test]
    fn advance_and_scale() {
        let c = SimClock::new(1.0);
        let a = c.now();
        c.advance(Duration::from_secs(3600));
        assert!(c.now() - a >= time::Duration::hours(1));
        c.set_scale(1000.0);
        assert_eq!(c.real_for(Duration::from_secs(10)), Duration::from_millis(10));
    }
}
