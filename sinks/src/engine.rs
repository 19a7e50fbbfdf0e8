//! Delivery rules every sink shares: cutting a stream of events into
//! batches within a peer's limits, and how long to wait before a retry.
//!
//! Invariant: no IO.

use std::ops::Range;
use std::time::Duration;

use crate::{Event, Limits};

/// Events that can never be delivered intact, with the reason.
pub type Oversized = Vec<(usize, String)>;

/// Cuts `events` into consecutive batches within `limits`, in order. An
/// event larger than `max_event_bytes` (or than `max_bytes` alone) goes to
/// no batch: it is returned with the reason, to be dead-lettered.
pub fn batches(events: &[Event], limits: &Limits) -> (Vec<Range<usize>>, Oversized) {
    let mut out = Vec::new();
    let mut oversized = Vec::new();
    let mut start = None;
    let mut bytes = 0usize;
    for (i, e) in events.iter().enumerate() {
        let size = e.body.len();
        if size > limits.max_event_bytes || size > limits.max_bytes {
            if let Some(s) = start.take() {
                out.push(s..i);
            }
            bytes = 0;
            oversized.push((
                i,
                format!(
                    "event of {size} bytes is over the peer's limit of {} bytes per event",
                    limits.max_event_bytes.min(limits.max_bytes)
                ),
            ));
            continue;
        }
        match start {
            Some(s) if i - s < limits.max_events && bytes + size <= limits.max_bytes => bytes += size,
            Some(s) => {
                out.push(s..i);
                start = Some(i);
                bytes = size;
            }
            None => {
                start = Some(i);
                bytes = size;
            }
        }
    }
    if let Some(s) = start {
        out.push(s..events.len());
    }
    (out, oversized)
}

/// Exponential backoff with full jitter: attempt `n` (from 0) waits a
/// uniformly random time in `[0, min(max, base · 2^n)]`, and never less than
/// the peer's `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).expect("operating system random source");
        self.delay_with(attempt, retry_after, u64::from_le_bytes(r))
    }

    /// As [`Backoff::delay`] with the random draw given (for tests).
    pub fn delay_with(&self, attempt: u32, retry_after: Option<Duration>, random: u64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let nanos = ceiling.as_nanos() as u64;
        let jittered = Duration::from_nanos(if nanos == 0 { 0 } else { random % (nanos + 1) });
        match retry_after {
            Some(after) => jittered.max(after),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u64, size: usize) -> Event {
        Event {
            tenant_id: "t".into(),
            index: i,
            event_id: format!("evt_{i}"),
            workflow_id: None,
            timestamp_ms: 0,
            body: vec![b'x'; size],
        }
    }

    #[test]
    fn batches_respect_counts_and_bytes_and_keep_order() {
        let limits = Limits {
            max_events: 3,
            max_bytes: 100,
            max_event_bytes: 60,
        };
        let events: Vec<Event> = [10, 10, 10, 10, 50, 45, 70, 5]
            .iter()
            .enumerate()
            .map(|(i, s)| ev(i as u64, *s))
            .collect();
        let (b, over) = batches(&events, &limits);
        assert_eq!(b, vec![0..3, 3..5, 5..6, 7..8]);
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].0, 6);
        assert!(over[0].1.contains("70 bytes"));
        for r in &b {
            assert!(r.len() <= 3);
            assert!(events[r.clone()].iter().map(|e| e.body.len()).sum::<usize>() <= 100);
        }
        assert_eq!(batches(&[], &limits), (vec![], vec![]));
    }

    #[test]
    fn backoff_grows_with_full_jitter_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        assert_eq!(b.delay_with(0, None, 0), Duration::ZERO);
        assert_eq!(
            b.delay_with(0, None, u64::MAX - 7),
            Duration::from_nanos((u64::MAX - 7) % 100_000_001)
        );
        assert!(b.delay_with(3, None, u64::MAX) <= Duration::from_millis(800));
        assert!(b.delay_with(40, None, u64::MAX) <= Duration::from_secs(5), "capped");
        assert_eq!(b.delay_with(0, Some(Duration::from_secs(2)), 0), Duration::from_secs(2));
        let spread: std::collections::BTreeSet<Duration> = (0..50).map(|_| b.delay(4, None)).collect();
        assert!(spread.len() > 40, "jittered");
    }
}
