//! Scenario 1 of issue 7, route propagation: with N HTTPProxies (two routes
//! each, a Service + EndpointSlice of their own, all pointing at the
//! harness's HTTP backend) preloaded, the controller and a real Envoy
//! (started from `contour bootstrap`, per-type xDS over mutual TLS) are
//! started; once the controller is in its steady state, new HTTPProxies are
//! applied one at a time (server-side apply) and each is timed from the apply
//! to
//!
//! - the first `200` through Envoy for its host (polled every 1 ms), and
//! - its `status.currentStatus` reading `valid` (polled every 2 ms),
//!
//! both polled concurrently. Meanwhile a steady client GETs an existing host
//! (the `steady` HTTPProxy, present at every size) through Envoy every few
//! milliseconds and counts responses that are neither 200 nor 404, and
//! connection errors.
//!
//! Steady state: before the samples, every controller starts from the same
//! state — the preloaded proxies' statuses are wiped (`PROPAGATION_WIPE_STATUS`,
//! default on) so each controller writes all N of them, as after creating
//! them — and the bench waits until (1) sampled preloaded hosts answer 200,
//! (2) all N (+1 steady) statuses read `valid`, and (3) a first new proxy
//! (`warm`, not a sample) is served and valid. Upstream Contour with its
//! defaults limits its Kubernetes client to 5 requests/s and its event
//! handler blocks on queued status writes, so it serves no new route until it
//! has written N statuses (≈ N / 5 s). The wait is capped
//! (`PROPAGATION_READY_CAP_SECS`, 240 s); when, after 20 s of status writes,
//! the measured write rate projects the end of the backlog beyond the cap,
//! the bench gives up early. A run that is not steady within the cap has no
//! samples: the table says "not live within …" with the number of statuses
//! written and the measured rate.
//!
//! The samples route to the `steady` Service (an existing cluster), so each
//! sample is a route (RDS) change, plus a status write.

mod config;
mod report;
mod sampling;
mod steady;
mod world;

use std::time::{Duration, Instant};

use super::{Result, Target, ms, percentile};

pub use config::Config;
pub use report::{table, verdict, write_outputs};
pub use sampling::{measure, run};
pub use steady::SteadyCounts;
pub use world::{World, grow, world};

/// Label on the preloaded proxies (and the steady one).
const PRELOADED: &str = "bench=propagation";
/// Label on the sampled (and warm-up) proxies, deleted after each run.
const SAMPLED: &str = "bench=propagation-sample";

/// One new proxy and what became of it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Sequence number within the run.
    pub seq: usize,
    /// The API server's answer to the apply.
    pub apply: Duration,
    /// Apply → first 200 through Envoy (`None`: not within the timeout).
    pub first_200: Option<Duration>,
    /// Apply → status `valid` (`None`: not within the timeout).
    pub valid: Option<Duration>,
}

/// How the controller reached (or did not reach) its steady state.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// Spawn → sampled preloaded hosts and the steady host answer 200, s.
    pub live_s: Option<f64>,
    /// Spawn → all preloaded statuses `valid`, s.
    pub statuses_s: Option<f64>,
    /// Spawn → the first new proxy (`warm`) served and valid, s.
    pub first_new_s: Option<f64>,
    /// Preloaded statuses (incl. the steady proxy) that read `valid` at the end of the wait.
    pub statuses_valid: usize,
    /// Preloaded proxies (incl. the steady proxy).
    pub statuses_total: usize,
    /// Status writes per second measured during the wait.
    pub status_rate: Option<f64>,
    /// Statuses wiped before the start.
    pub wiped: usize,
    /// Why the run has no samples, when it has none.
    pub not_live: Option<String>,
}

/// The measurements of one controller at one size.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which.
    pub target: Target,
    /// Preloaded proxies (not counting the steady one).
    pub preloaded: usize,
    /// Samples planned.
    pub planned: usize,
    /// Every sample taken.
    pub samples: Vec<Sample>,
    /// The way to the steady state.
    pub ready: Readiness,
    /// The steady client's counts during the samples.
    pub steady: SteadyCounts,
    /// Controller CPU seconds during the samples.
    pub cpu_secs: f64,
    /// Controller RSS after the samples, MiB.
    pub rss_mib: f64,
    /// Wall time of the run (spawn → samples done), s.
    pub wall_s: f64,
}

impl Outcome {
    /// Sorted apply → first 200 of the samples served.
    pub fn first_200_sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.samples.iter().filter_map(|s| s.first_200).collect();
        v.sort();
        v
    }
    /// Sorted apply → status valid of the samples that got there.
    pub fn valid_sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.samples.iter().filter_map(|s| s.valid).collect();
        v.sort();
        v
    }
    /// Sorted API answers to the applies.
    pub fn apply_sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.samples.iter().map(|s| s.apply).collect();
        v.sort();
        v
    }
    /// Samples never served (taken and timed out, or not taken).
    pub fn not_served(&self) -> usize {
        self.planned
            - self
                .samples
                .iter()
                .filter(|s| s.first_200.is_some())
                .count()
    }
    /// Samples whose status never read valid (taken and timed out, or not taken).
    pub fn not_valid(&self) -> usize {
        self.planned - self.samples.iter().filter(|s| s.valid.is_some()).count()
    }
    /// Quantile `p` of first 200, ms (`None` without samples).
    pub fn first_200_ms(&self, p: f64) -> Option<f64> {
        let v = self.first_200_sorted();
        (!v.is_empty()).then(|| ms(percentile(&v, p)))
    }
    /// Quantile `p` of status valid, ms (`None` without samples).
    pub fn valid_ms(&self, p: f64) -> Option<f64> {
        let v = self.valid_sorted();
        (!v.is_empty()).then(|| ms(percentile(&v, p)))
    }
}

/// The bench binary's body.
pub async fn main() -> Result<()> {
    crate::init_crypto();
    let cfg = Config::from_env();
    let started = Instant::now();
    let outcomes = run(&cfg).await?;
    println!("{}", table(&cfg, &outcomes));
    println!("{}\n", verdict(&outcomes));
    for p in write_outputs(&cfg, &outcomes)? {
        println!("wrote {}", p.display());
    }
    println!(
        "wall time {:.0} s (incl. preload, all sizes and controllers)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
