//! Shared pieces of the end-to-end benchmarks of issue 7 (`tests/benches/`):
//! each scenario lives here as a function that the bench binary runs with
//! the sizes and the smoke test (`tests/tests/bench_smoke.rs`) runs
//! with tiny ones.
//!
//! - [`objects`]: deterministic (seeded) object generators and a fast bulk create.
//! - [`xds`]: a lightweight ADS client that subscribes and ACKs like Envoy
//!   (CDS and LDS wildcard, then EDS for the clusters, RDS and SDS for what
//!   the listeners name) and counts responses and bytes; it works against
//!   ours and upstream Contour (both speak xDS v3 over mutual TLS).
//! - [`controller`]: ours or upstream Contour as a process, pinned with
//!   `taskset`, with `/proc` readers for RSS and CPU.
//! - [`report`]: Markdown tables and CSV; [`plot`]: PNG charts.
//! - Scenarios: [`propagation`] (1), [`coldstart`] (2), [`churn`] (3), [`fanout`] (4),
//!   [`operator`] (6).

pub mod churn;
pub mod coldstart;
pub mod controller;
pub mod fanout;
pub mod layout;
pub mod objects;
pub mod operator;
pub mod operator_upstream;
pub mod plot;
pub mod propagation;
pub mod report;
pub mod xds;

use std::path::PathBuf;
use std::time::Duration;

pub use controller::{Controller, Target};

/// Errors of the benchmarks: anything, with a message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of the benchmarks.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from a message.
pub fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

/// What every scenario's configuration has: bulk-create concurrency, the
/// generator seed, where CSV and PNG go and the file name prefix.
#[derive(Debug, Clone)]
pub struct Common {
    /// Creates in flight while preloading (`BENCH_CONCURRENCY`, 32).
    pub concurrency: usize,
    /// Generator seed (`BENCH_SEED`, 7).
    pub seed: u64,
    /// Where CSV and PNG go (`BENCH_OUT`, else `docs/bench/`).
    pub out_dir: PathBuf,
    /// File name prefix (the scenario's name).
    pub name: String,
}

impl Common {
    /// The defaults, overridden by the environment, for scenario `name`.
    pub fn from_env(name: &str) -> Common {
        Common {
            concurrency: env_or("BENCH_CONCURRENCY", 32),
            seed: env_or("BENCH_SEED", 7),
            out_dir: out_dir_from_env(),
            name: name.into(),
        }
    }

    /// Fixed values (the smoke tests).
    pub fn fixed(name: &str, out_dir: PathBuf) -> Common {
        Common {
            concurrency: 16,
            seed: 1,
            out_dir,
            name: name.into(),
        }
    }
}

/// `$KEY` parsed, else `default`.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `$KEY` as a comma-separated list of numbers, else `default`.
pub fn env_list(key: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(key) {
        Ok(v) => v
            .split(',')
            .filter_map(|s| s.trim().replace('_', "").parse().ok())
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// The controllers to run: `$TARGETS` (`ours`, `upstream`, comma-separated),
/// default ours only.
pub fn targets_from_env() -> Vec<Target> {
    std::env::var("TARGETS")
        .unwrap_or_else(|_| "ours".into())
        .split(',')
        .filter_map(|t| match t.trim() {
            "ours" => Some(Target::Ours),
            "upstream" => Some(Target::Upstream),
            _ => None,
        })
        .collect()
}

/// Where CSV and PNG files go: `$BENCH_OUT`, else `docs/bench/` of the repository.
pub fn out_dir_from_env() -> PathBuf {
    std::env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::tools::repo_root().join("docs/bench"))
}

/// The `p` quantile (0..=1) of sorted durations (nearest rank); zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
