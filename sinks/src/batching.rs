//! Delivery rules every sink shares: cutting a stream of events into
//! batches within a peer's limits, and how long to wait before a retry.
//!
//! Invariant: no IO.

use std::ops::Range;
use std::time::Duration;

use crate::{Event, Limits};

/// Events that can never be delivered intact, with the reason.
pub type Oversized = Vec<(usize, String)>;

/// Cuts `events` into consecutive batches within `limits`, in order: at most
/// `max_events` events, `max_bytes` bytes counting `per_event_overhead` for
/// each, and at most `max_span_ms` between the earliest and the latest
/// timestamp. An event larger than `max_event_bytes` (or than `max_bytes`
/// alone) goes to no batch: it is returned with the reason, to be
/// dead-lettered.
pub fn batches(events: &[Event], limits: &Limits) -> (Vec<Range<usize>>, Oversized) {
    struct Open {
        start: usize,
        bytes: usize,
        earliest: i64,
        latest: i64,
    }
    let mut out = Vec::new();
    let mut oversized = Vec::new();
    let mut open: Option<Open> = None;
    for (i, e) in events.iter().enumerate() {
        let size = e.body.len() + limits.per_event_overhead;
        if e.body.len() > limits.max_event_bytes || size > limits.max_bytes {
            if let Some(b) = open.take() {
                out.push(b.start..i);
            }
            oversized.push((
                i,
                format!(
                    "event of {} bytes is over the peer's limit of {} bytes per event",
                    e.body.len(),
                    limits
                        .max_event_bytes
                        .min(limits.max_bytes - limits.per_event_overhead.min(limits.max_bytes))
                ),
            ));
            continue;
        }
        let ts = e.timestamp_ms;
        if let Some(b) = &mut open {
            let (earliest, latest) = (b.earliest.min(ts), b.latest.max(ts));
            let fits = i - b.start < limits.max_events
                && b.bytes + size <= limits.max_bytes
                && limits
                    .max_span_ms
                    .is_none_or(|span| latest.saturating_sub(earliest) <= span);
            if fits {
                *b = Open {
                    start: b.start,
                    bytes: b.bytes + size,
                    earliest,
                    latest,
                };
                continue;
            }
            out.push(b.start..i);
        }
        open = Some(Open {
            start: i,
            bytes: size,
            earliest: ts,
            latest: ts,
        });
    }
    if let Some(b) = open {
        out.push(b.start..events.len());
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
        let limits = Limits::new(3, 100, 60);
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
    fn batches_count_the_per_event_overhead_and_the_time_span() {
        // CloudWatch-like: 26 bytes counted per event, one hour at most.
        let limits = Limits {
            per_event_overhead: 26,
            max_span_ms: Some(3_600_000),
            ..Limits::new(100, 200, 150)
        };
        let at = |i: u64, size: usize, ts: i64| Event {
            timestamp_ms: ts,
            ..ev(i, size)
        };
        // Bodies of 74 bytes are 100 with overhead: two per batch.
        let events: Vec<Event> = (0..5).map(|i| at(i, 74, 0)).collect();
        assert_eq!(batches(&events, &limits).0, vec![0..2, 2..4, 4..5]);
        // A body of 175 fits max_bytes alone but not with its overhead.
        let (b, over) = batches(&[at(0, 175, 0)], &limits);
        assert!(b.is_empty());
        assert_eq!(over.len(), 1);
        // The span is from the earliest to the latest, in any order.
        let events = vec![
            at(0, 1, 3_000_000),
            at(1, 1, 0),
            at(2, 1, 3_600_000),
            at(3, 1, 3_600_001),
            at(4, 1, 0),
        ];
        assert_eq!(batches(&events, &limits).0, vec![0..3, 3..4, 4..5]);
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
