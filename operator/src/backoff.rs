//! Retry timing after a failed reconcile: exponential backoff with a cap,
//! counted per object and reset by a success — like controller-runtime's
//! per-item rate limiter. [`Backoff`] is the pure schedule; [`Failures`]
//! keeps the count of consecutive failures of each object; [`WatchErrors`]
//! paces the controller's watches after errors.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Delay before the first retry.
pub const BASE: Duration = Duration::from_millis(200);

/// Longest delay between two retries of one object.
pub const CAP: Duration = Duration::from_secs(300);

/// An exponential schedule: `base`, `2·base`, `4·base`, … up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Upper bound of every delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: BASE,
            cap: CAP,
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 for the first):
    /// `base · 2^(failures-1)`, at most `cap`. Zero failures wait nothing.
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(exponent) = failures.checked_sub(1) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(exponent.min(31)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.cap)
    }
}

/// Consecutive failures per object, and the retry delay they call for.
#[derive(Debug)]
pub struct Failures<K> {
    backoff: Backoff,
    counts: Mutex<HashMap<K, u32>>,
}

impl<K: Eq + Hash> Failures<K> {
    /// No failures yet.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one more failure of `key`; returns the number of consecutive
    /// failures so far and how long to wait before the next attempt.
    pub fn failed(&self, key: K) -> (u32, Duration) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        (*n, self.backoff.delay(*n))
    }

    /// Forgets the failures of `key` (it reconciled, or it is gone).
    pub fn succeeded(&self, key: &K) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.remove(key);
    }
}

/// How the controller's watches back off after errors: 100 ms, doubling,
/// at most 500 ms between two errors; an event resets it once no error has
/// come for [`WatchErrors::QUIET`].
///
/// The controller's watches share one backoff: one error from any of them
/// pauses them all, and a watch that failed retries when next read, once
/// per pause. So while the API server is away the watches retry about
/// twice a second in total, not in a hot loop. The cap is short on
/// purpose: when the server is back, each of the dozen watches still
/// yields the error of its last attempt, one pause apiece, before it
/// resumes — with client-go's 30 s cap, changes went unnoticed for minutes
/// after an outage. Events of healthy watches between the errors of a
/// failing one (say, one without RBAC) do not reset it: that one keeps
/// retrying at most twice a second.
#[derive(Debug, Clone)]
pub struct WatchErrors {
    schedule: Backoff,
    errors: u32,
    last_error: Option<Instant>,
}

impl Default for WatchErrors {
    fn default() -> Self {
        Self {
            schedule: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_millis(500),
            },
            errors: 0,
            last_error: None,
        }
    }
}

impl WatchErrors {
    /// How long after the last error an event resets the backoff.
    pub const QUIET: Duration = Duration::from_secs(2);

    /// The pause after one more error at `now`.
    pub fn error_at(&mut self, now: Instant) -> Duration {
        self.errors = self.errors.saturating_add(1);
        self.last_error = Some(now);
        self.schedule.delay(self.errors)
    }

    /// An event at `now`: forgets the errors if none came for [`Self::QUIET`].
    pub fn event_at(&mut self, now: Instant) {
        let quiet = self
            .last_error
            .is_none_or(|at| now.saturating_duration_since(at) >= Self::QUIET);
        if quiet {
            self.errors = 0;
        }
    }
}

impl Iterator for WatchErrors {
    type Item = Duration;

    /// The pause after one more error; never gives up.
    fn next(&mut self) -> Option<Duration> {
        Some(self.error_at(Instant::now()))
    }
}

impl kube::runtime::utils::Backoff for WatchErrors {
    fn reset(&mut self) {
        self.event_at(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let b = Backoff {
            base: ms(200),
            cap: Duration::from_secs(5),
        };
        let delays: Vec<_> = (0..=8).map(|n| b.delay(n)).collect();
        assert_eq!(
            delays,
            [0, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(ms)
        );
    }

    #[test]
    fn never_overflows_and_stays_at_the_cap() {
        let b = Backoff::default();
        for n in [31, 32, 33, 64, 1000, u32::MAX] {
            assert_eq!(b.delay(n), CAP, "{n} failures");
        }
        let huge = Backoff {
            base: Duration::MAX,
            cap: Duration::MAX,
        };
        assert_eq!(huge.delay(5), Duration::MAX);
    }

    #[test]
    fn the_default_starts_small_and_is_bounded() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), BASE);
        assert!((1..100).all(|n| b.delay(n) <= b.delay(n + 1)));
        assert!((1..100).all(|n| b.delay(n) <= CAP));
    }

    #[test]
    fn watch_errors_pause_briefly_and_never_give_up() {
        let mut w = WatchErrors::default();
        let t0 = Instant::now();
        let first: Vec<_> = (0..5).map(|_| w.error_at(t0)).collect();
        assert_eq!(first, [100, 200, 400, 500, 500].map(ms));
        assert_eq!(w.nth(10_000), Some(ms(500)), "still retrying");
    }

    #[test]
    fn an_event_resets_the_watch_backoff_only_after_a_quiet_spell() {
        let mut w = WatchErrors::default();
        let t0 = Instant::now();
        let at = |millis| t0 + ms(millis);
        for _ in 0..4 {
            w.error_at(t0);
        }
        // Events of healthy watches between the errors of a failing one.
        w.event_at(at(100));
        assert_eq!(w.error_at(at(600)), ms(500), "not reset");
        w.event_at(at(600) + WatchErrors::QUIET);
        assert_eq!(w.error_at(at(5000)), ms(100), "reset after a quiet spell");
        let mut fresh = WatchErrors::default();
        fresh.event_at(t0);
        assert_eq!(fresh.error_at(t0), ms(100));
    }

    #[test]
    fn counts_per_object_and_a_success_resets() {
        let f = Failures::new(Backoff {
            base: ms(100),
            cap: ms(1000),
        });
        assert_eq!(f.failed("a"), (1, ms(100)));
        assert_eq!(f.failed("a"), (2, ms(200)));
        assert_eq!(f.failed("b"), (1, ms(100)), "b has its own count");
        assert_eq!(f.failed("a"), (3, ms(400)));
        f.succeeded(&"a");
        assert_eq!(f.failed("a"), (1, ms(100)), "reset by the success");
        assert_eq!(f.failed("b"), (2, ms(200)), "b is not reset");
        f.succeeded(&"never-failed");
    }
}
