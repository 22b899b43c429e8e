//! The sizes and switches of the scenario, from the environment.

use std::time::Duration;

use crate::bench::{Common, Target, env_list, env_or};

/// Sizes and switches.
#[derive(Debug, Clone)]
pub struct Config {
    /// Preloaded HTTPProxies, ascending; objects are added between sizes
    /// (`PROPAGATION_SIZES`, 0,1000,5000).
    pub sizes: Vec<usize>,
    /// New proxies applied one at a time per run (`PROPAGATION_SAMPLES`, 100).
    pub samples: usize,
    /// Namespaces the preloaded objects are spread over (`PROPAGATION_NAMESPACES`, 100).
    pub namespaces: usize,
    /// Controllers, in order (`TARGETS`).
    pub targets: Vec<Target>,
    /// Longest wait from spawn to the steady state (`PROPAGATION_READY_CAP_SECS`, 240).
    pub ready_cap: Duration,
    /// Longest wait for one sample's 200 and status (`PROPAGATION_SAMPLE_TIMEOUT_SECS`, 20).
    pub sample_timeout: Duration,
    /// The steady client's period (`PROPAGATION_STEADY_MS`, 5).
    pub steady_every: Duration,
    /// Pause between samples (`PROPAGATION_GAP_MS`, 20).
    pub gap: Duration,
    /// Wipe the preloaded proxies' statuses before each run (`PROPAGATION_WIPE_STATUS`, 1).
    pub wipe_status: bool,
    /// Concurrency, seed, output directory and file name prefix.
    pub common: Common,
}

impl Config {
    /// The sizes, overridden by the environment.
    pub fn from_env() -> Config {
        let mut sizes = env_list("PROPAGATION_SIZES", &[0, 1000, 5000]);
        sizes.sort_unstable();
        sizes.dedup();
        Config {
            sizes,
            samples: env_or("PROPAGATION_SAMPLES", 100),
            namespaces: env_or("PROPAGATION_NAMESPACES", 100),
            targets: crate::bench::targets_from_env(),
            ready_cap: Duration::from_secs(env_or("PROPAGATION_READY_CAP_SECS", 240)),
            sample_timeout: Duration::from_secs(env_or("PROPAGATION_SAMPLE_TIMEOUT_SECS", 20)),
            steady_every: Duration::from_millis(env_or("PROPAGATION_STEADY_MS", 5)),
            gap: Duration::from_millis(env_or("PROPAGATION_GAP_MS", 20)),
            wipe_status: env_or("PROPAGATION_WIPE_STATUS", 1) != 0,
            common: Common::from_env("propagation"),
        }
    }
}
