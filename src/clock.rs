//! The only place that reads the wall clock.
//!
//! Everything that stamps time (decisions, tokens, bundles, captured
//! `time.now_ns` values) asks a [`Clock`], so tests can pin time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { fixed: None }
    }

    /// A clock that reads `now_ns` until moved with [`Clock::advance_ns`].
    pub fn fixed(now_ns: i64) -> Self {
        Self {
            fixed: Some(Arc::new(AtomicI64::new(now_ns))),
        }
    }

    pub fn advance_ns(&self, delta: i64) {
        if let Some(f) = &self.fixed {
            f.fetch_add(delta, Ordering::SeqCst);
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_ns(&self) -> i64 {
        match &self.fixed {
            Some(f) => f.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ns() / 1_000_000
    }
}

/// RFC 3339 text (UTC, millisecond precision) for a millisecond timestamp.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = Clock::fixed(1_700_000_000_000_000_000);
        assert_eq!(c.now_ms(), 1_700_000_000_000);
        c.advance_ns(5_000_000);
        assert_eq!(c.now_ms(), 1_700_000_000_005);
        assert_eq!(rfc3339_ms(c.now_ms()), "2023-11-14T22:13:20.005Z");
    }
}
