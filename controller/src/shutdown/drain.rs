//! The drain sequence of `contour envoy shutdown`, over any [`EnvoyAdmin`]
//! so that it runs against a fake in tests. As upstream's
//! `shutdownHandler`: wait `--drain-delay`; POST `/healthcheck/fail` (four
//! attempts, 200 ms, 1 s and 5 s apart; a final failure is logged and the
//! drain goes on); wait `--check-delay`; then poll the open connections
//! every `--check-interval` until at most `--min-open-connections` are left.
//! A failed poll is logged and retried. There is no deadline of its own: the
//! pod's `terminationGracePeriodSeconds` bounds the wait.

use std::future::Future;
use std::time::Duration;

use super::ShutdownError;
use super::stats::open_connections;

/// Pauses between the attempts of `/healthcheck/fail` (upstream: a backoff
/// of 4 steps from 200 ms with factor 5; we leave out its 10 % jitter).
pub const HEALTHCHECK_FAIL_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// What the drain needs from Envoy's admin interface.
pub trait EnvoyAdmin {
    /// `POST /healthcheck/fail`: Envoy fails its health checks (`/ready`
    /// answers 503 `DRAINING`) and closes HTTP/1 connections after their
    /// next response.
    fn fail_health_checks(&self) -> impl Future<Output = Result<(), ShutdownError>> + Send;
    /// The text of [`super::stats::STATS_PATH`].
    fn stats(&self) -> impl Future<Output = Result<String, ShutdownError>> + Send;
}

/// The timings and threshold of a drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainPlan {
    /// Wait before failing the health checks.
    pub drain_delay: Duration,
    /// Wait after failing them, before the first poll.
    pub check_delay: Duration,
    /// Wait between polls.
    pub check_interval: Duration,
    /// The drain is done when at most this many connections are open.
    pub min_open_connections: u64,
    /// Pauses between the attempts of `/healthcheck/fail`.
    pub retry_delays: Vec<Duration>,
}

/// Whether the drain is done.
pub fn drained(open: u64, min_open_connections: u64) -> bool {
    open <= min_open_connections
}

/// Runs the drain; returns the connections still open at the end.
pub async fn drain<A: EnvoyAdmin>(admin: &A, plan: &DrainPlan) -> u64 {
    tracing::info!(drain_delay = ?plan.drain_delay, "waiting before draining connections");
    tokio::time::sleep(plan.drain_delay).await;

    fail_health_checks(admin, &plan.retry_delays).await;

    tracing::info!(check_delay = ?plan.check_delay, "waiting before polling for open connections");
    tokio::time::sleep(plan.check_delay).await;

    let min = plan.min_open_connections;
    loop {
        match admin.stats().await.and_then(|text| open_connections(&text)) {
            Ok(open) if drained(open, min) => {
                tracing::info!(
                    open_connections = open,
                    min_connections = min,
                    "min number of open connections found, shutting down"
                );
                return open;
            }
            Ok(open) => {
                tracing::info!(
                    open_connections = open,
                    min_connections = min,
                    "polled open connections"
                );
            }
            Err(e) => tracing::warn!(error = %e, "polling Envoy for open connections failed"),
        }
        tokio::time::sleep(plan.check_interval).await;
    }
}

/// `/healthcheck/fail` with retries; a final failure is only logged, as
/// upstream: the connections are still polled and the ready file written.
async fn fail_health_checks<A: EnvoyAdmin>(admin: &A, retry_delays: &[Duration]) {
    let attempts = retry_delays.len() + 1;
    for attempt in 1..=attempts {
        tracing::info!(attempt, "failing Envoy's health checks");
        match admin.fail_health_checks().await {
            Ok(()) => return,
            Err(e) => match retry_delays.get(attempt - 1) {
                Some(pause) => {
                    tracing::warn!(attempt, error = %e, retry_in = ?pause, "failing Envoy's health checks failed");
                    tokio::time::sleep(*pause).await;
                }
                None => tracing::error!(
                    attempts,
                    error = %e,
                    "failing Envoy's health checks failed; polling for open connections anyway"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    /// Answers from scripts; once a script is used up, its last answer repeats.
    struct FakeAdmin {
        fail: Mutex<VecDeque<bool>>,
        stats: Mutex<VecDeque<Option<u64>>>,
        fail_calls: Mutex<u32>,
        stats_calls: Mutex<u32>,
    }

    impl FakeAdmin {
        fn new(fail: &[bool], stats: &[Option<u64>]) -> FakeAdmin {
            FakeAdmin {
                fail: Mutex::new(fail.iter().copied().collect()),
                stats: Mutex::new(stats.iter().copied().collect()),
                fail_calls: Mutex::new(0),
                stats_calls: Mutex::new(0),
            }
        }

        fn calls(&self) -> (u32, u32) {
            let get = |m: &Mutex<u32>| *m.lock().unwrap_or_else(|p| p.into_inner());
            (get(&self.fail_calls), get(&self.stats_calls))
        }
    }

    fn next<T: Copy>(script: &Mutex<VecDeque<T>>, calls: &Mutex<u32>) -> Option<T> {
        *calls.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let mut s = script.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() > 1 {
            s.pop_front()
        } else {
            s.front().copied()
        }
    }

    fn refused() -> ShutdownError {
        ShutdownError::Connect {
            address: "unix:/nowhere".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        }
    }

    impl EnvoyAdmin for FakeAdmin {
        async fn fail_health_checks(&self) -> Result<(), ShutdownError> {
            match next(&self.fail, &self.fail_calls) {
                Some(true) => Ok(()),
                _ => Err(refused()),
            }
        }

        async fn stats(&self) -> Result<String, ShutdownError> {
            match next(&self.stats, &self.stats_calls) {
                Some(Some(n)) => Ok(format!(
                    "http.admin.downstream_cx_active: 1\nhttp.ingress_http.downstream_cx_active: {n}\n"
                )),
                _ => Err(refused()),
            }
        }
    }

    fn plan(min_open_connections: u64) -> DrainPlan {
        DrainPlan {
            drain_delay: Duration::ZERO,
            check_delay: Duration::ZERO,
            check_interval: Duration::from_millis(1),
            min_open_connections,
            retry_delays: vec![Duration::from_millis(1); 3],
        }
    }

    #[test]
    fn drained_means_at_most_the_minimum() {
        assert!(drained(0, 0));
        assert!(drained(2, 2));
        assert!(!drained(3, 2));
        assert!(!drained(1, 0));
    }

    #[tokio::test]
    async fn polls_until_the_connections_drop_to_the_minimum() {
        let admin = FakeAdmin::new(&[true], &[Some(3), Some(2), Some(1), Some(0)]);
        assert_eq!(drain(&admin, &plan(0)).await, 0);
        assert_eq!(admin.calls(), (1, 4));

        let admin = FakeAdmin::new(&[true], &[Some(3), Some(2), Some(1), Some(0)]);
        assert_eq!(drain(&admin, &plan(2)).await, 2);
        assert_eq!(admin.calls(), (1, 2));
    }

    #[tokio::test]
    async fn failed_polls_and_unreadable_stats_are_retried() {
        let admin = FakeAdmin::new(&[true], &[None, None, Some(1), Some(0)]);
        assert_eq!(drain(&admin, &plan(0)).await, 0);
        assert_eq!(admin.calls(), (1, 4));
    }

    #[tokio::test]
    async fn healthcheck_fail_is_retried_then_given_up_without_stopping_the_drain() {
        let admin = FakeAdmin::new(&[false, false, true], &[Some(0)]);
        drain(&admin, &plan(0)).await;
        assert_eq!(admin.calls(), (3, 1));

        let admin = FakeAdmin::new(&[false], &[Some(0)]);
        drain(&admin, &plan(0)).await;
        assert_eq!(
            admin.calls(),
            (4, 1),
            "four attempts as upstream, then polls"
        );
    }

    #[tokio::test]
    async fn the_drain_and_check_delays_are_waited() {
        let admin = FakeAdmin::new(&[true], &[Some(0)]);
        let p = DrainPlan {
            drain_delay: Duration::from_millis(60),
            check_delay: Duration::from_millis(60),
            ..plan(0)
        };
        let started = std::time::Instant::now();
        drain(&admin, &p).await;
        assert!(started.elapsed() >= Duration::from_millis(120));
    }
}
