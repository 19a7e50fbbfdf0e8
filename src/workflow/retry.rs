//! Error handling: which retrier or catcher takes an error, and how long a
//! retry waits.
//!
//! ASL semantics: retriers and catchers are tried in order and the first
//! whose `errorEquals` matches is used. `States.ALL` matches every error;
//! `States.TaskFailed` every error except `States.Timeout`; any other name
//! only itself. Each retrier counts its own retries: the interpreter retries
//! while that count is below `maxAttempts`, waiting [`delay`] before retry
//! number `attempt` (1 for the first retry): `intervalSeconds ×
//! backoffRate^(attempt − 1)`, capped at `maxDelaySeconds` (and at
//! [`MAX_DELAY_SECONDS`] in any case); with `FULL` jitter, a uniform draw in
//! `[0, that]`. When no retrier applies, or its attempts are spent, the first
//! matching catcher sends the error output to its `next`.
//!
//! Invariants: no IO, no clock, no randomness of its own (the caller passes
//! it in); delays are whole milliseconds and never overflow.

use std::time::Duration;

use super::definition::{Catcher, JitterStrategy, MAX_DELAY_SECONDS, Retrier};
use super::error_names::{ALL, TASK_FAILED, TIMEOUT};

/// Whether an `errorEquals` list matches `error`.
pub fn matches(error_equals: &[String], error: &str) -> bool {
    error_equals
        .iter()
        .any(|name| name == ALL || name == error || (name == TASK_FAILED && error != TIMEOUT))
}

/// The first retrier that matches `error`, with its index (the interpreter
/// keeps one retry count per retrier).
pub fn find_retrier<'a>(retry: &'a [Retrier], error: &str) -> Option<(usize, &'a Retrier)> {
    retry.iter().enumerate().find(|(_, r)| matches(&r.error_equals, error))
}

/// The first catcher that matches `error`.
pub fn find_catcher<'a>(catch: &'a [Catcher], error: &str) -> Option<&'a Catcher> {
    catch.iter().find(|c| matches(&c.error_equals, error))
}

/// Whether a retrier that has already retried `retries` times retries again.
pub fn may_retry(retrier: &Retrier, retries: u32) -> bool {
    retries < retrier.max_attempts
}

/// How long to wait before retry number `attempt` (1 is the first retry; 0
/// is taken as 1). `random(n)` must return a uniform integer in `0..=n`
/// (milliseconds); it is called only with `FULL` jitter, and what it returns
/// is capped at `n`.
pub fn delay(retrier: &Retrier, attempt: u32, random: impl FnOnce(u64) -> u64) -> Duration {
    let exponent = i32::try_from(attempt.max(1) - 1).unwrap_or(i32::MAX);
    let cap = retrier
        .max_delay_seconds
        .map_or(MAX_DELAY_SECONDS, |m| m.min(MAX_DELAY_SECONDS)) as f64;
    let seconds = retrier.interval_seconds as f64 * retrier.backoff_rate.powi(exponent);
    // NaN (a bad rate in a hand-built retrier) and infinity take the cap.
    let seconds = if seconds <= cap { seconds.max(0.0) } else { cap };
    let millis = (seconds * 1000.0).round() as u64;
    let millis = match retrier.jitter_strategy {
        JitterStrategy::None => millis,
        JitterStrategy::Full => random(millis).min(millis),
    };
    Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::path::OptionalPath;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn retrier(interval: u64, rate: f64, max_delay: Option<u64>, jitter: JitterStrategy) -> Retrier {
        Retrier {
            error_equals: names(&[ALL]),
            interval_seconds: interval,
            max_attempts: 3,
            backoff_rate: rate,
            max_delay_seconds: max_delay,
            jitter_strategy: jitter,
        }
    }

    fn no_random(_: u64) -> u64 {
        panic!("no jitter was asked for")
    }

    #[test]
    fn delays_back_off_and_cap() {
        let r = retrier(2, 2.0, None, JitterStrategy::None);
        let secs: Vec<u64> = (1..=5).map(|a| delay(&r, a, no_random).as_secs()).collect();
        assert_eq!(secs, vec![2, 4, 8, 16, 32]);
        assert_eq!(delay(&r, 0, no_random), Duration::from_secs(2));
        let capped = retrier(2, 2.0, Some(10), JitterStrategy::None);
        let secs: Vec<u64> = (1..=5).map(|a| delay(&capped, a, no_random).as_secs()).collect();
        assert_eq!(secs, vec![2, 4, 8, 10, 10]);
        let fractional = retrier(1, 1.5, None, JitterStrategy::None);
        assert_eq!(delay(&fractional, 2, no_random), Duration::from_millis(1500));
        assert_eq!(delay(&fractional, 3, no_random), Duration::from_millis(2250));
        let flat = retrier(3, 1.0, None, JitterStrategy::None);
        assert_eq!(delay(&flat, 50, no_random), Duration::from_secs(3));
        // Huge attempts do not overflow: the global cap applies.
        assert_eq!(delay(&r, u32::MAX, no_random), Duration::from_secs(MAX_DELAY_SECONDS));
        let bad = retrier(1, f64::NAN, None, JitterStrategy::None);
        assert_eq!(delay(&bad, 2, no_random), Duration::from_secs(MAX_DELAY_SECONDS));
    }

    #[test]
    fn full_jitter_stays_within_bounds() {
        let r = retrier(2, 2.0, Some(5), JitterStrategy::Full);
        let mut asked = 0;
        let d = delay(&r, 2, |n| {
            asked = n;
            1234
        });
        assert_eq!(asked, 4000);
        assert_eq!(d, Duration::from_millis(1234));
        assert_eq!(delay(&r, 2, |_| 0), Duration::ZERO);
        assert_eq!(delay(&r, 2, |n| n), Duration::from_millis(4000));
        // A draw above the bound is capped; the cap applies before jitter.
        assert_eq!(delay(&r, 2, |_| u64::MAX), Duration::from_millis(4000));
        assert_eq!(delay(&r, 9, |n| n), Duration::from_secs(5));
    }

    #[test]
    fn error_matching() {
        assert!(matches(&names(&[ALL]), "Anything.AtAll"));
        assert!(matches(&names(&[ALL]), TIMEOUT));
        assert!(matches(&names(&[TASK_FAILED]), "Tool.TemporaryFailure"));
        assert!(matches(&names(&[TASK_FAILED]), "States.Rejected"));
        assert!(matches(&names(&[TASK_FAILED]), TASK_FAILED));
        assert!(!matches(&names(&[TASK_FAILED]), TIMEOUT));
        assert!(matches(&names(&[TIMEOUT]), TIMEOUT));
        assert!(matches(
            &names(&["Runner.Timeout", "Tool.TemporaryFailure"]),
            "Tool.TemporaryFailure"
        ));
        assert!(!matches(&names(&["Runner.Timeout"]), "Runner.timeout"));
        assert!(!matches(&names(&["Runner.Timeout"]), TIMEOUT));
        assert!(!matches(&[], "X"));
    }

    #[test]
    fn first_match_wins() {
        let retry = vec![
            Retrier {
                error_equals: names(&["Tool.TemporaryFailure"]),
                ..Retrier::default()
            },
            Retrier {
                error_equals: names(&[TASK_FAILED]),
                max_attempts: 1,
                ..Retrier::default()
            },
            Retrier {
                error_equals: names(&[ALL]),
                max_attempts: 0,
                ..Retrier::default()
            },
        ];
        assert_eq!(find_retrier(&retry, "Tool.TemporaryFailure").map(|(i, _)| i), Some(0));
        assert_eq!(find_retrier(&retry, "Agent.Crashed").map(|(i, _)| i), Some(1));
        assert_eq!(find_retrier(&retry, TIMEOUT).map(|(i, _)| i), Some(2));
        assert_eq!(find_retrier(&retry[..2], TIMEOUT), None);
        assert!(may_retry(&retry[1], 0));
        assert!(!may_retry(&retry[1], 1));
        assert!(!may_retry(&retry[2], 0));

        let catcher = |errors: &[&str], next: &str| Catcher {
            error_equals: names(errors),
            result_path: OptionalPath::Absent,
            next: next.to_owned(),
        };
        let catch = vec![catcher(&[TIMEOUT], "OnTimeout"), catcher(&[ALL], "OnAnything")];
        assert_eq!(
            find_catcher(&catch, TIMEOUT).map(|c| c.next.as_str()),
            Some("OnTimeout")
        );
        assert_eq!(
            find_catcher(&catch, "States.Rejected").map(|c| c.next.as_str()),
            Some("OnAnything")
        );
        assert_eq!(find_catcher(&catch[..1], "States.Rejected"), None);
    }
}
