//! The incremental engine: the same result as `dag::build` →
//! `envoy::translate` → `Snapshot::build`, computed from the previous
//! result where the cache did not change.
//!
//! It needs no list of changed objects: every remembered piece is checked
//! against the cache (objects are compared by identity, the cache replaces
//! an object's `Arc` when it changes) or against the DAG value it came from,
//! so it cannot miss a change. What it keeps:
//!
//! * per HTTPProxy root, what processing it wrote (virtual hosts, statuses,
//!   reached proxies) with every object it read (see [`roots`]);
//! * per virtual host, cluster, load assignment, secret and filter chain, the
//!   DAG value and its canonical bytes / versioned resource (see
//!   [`translate`]); `ingress_http` and `ingress_https` are spliced from
//!   those bytes instead of being encoded and hashed from scratch.
//!
//! Ingresses, IngressRoutes, the fqdn/orphan checks of HTTPProxies and the
//! final pruning still run in full on every build; they are cheap next to
//! the roots.

pub mod fast;
pub mod roots;
pub mod splice;
pub mod translate;

use std::sync::Arc;

use crate::cache::Cache;
use crate::dag::{BuilderConfig, Dag};
use crate::envoy::json::JsonError;
use crate::xds::snapshot::Snapshot;

/// Keeps the previous build's pieces; see the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: BuilderConfig,
    roots: roots::Roots,
    translator: translate::Translator,
}

/// The result of one build.
#[derive(Debug, Clone)]
pub struct Output {
    /// The DAG, with the statuses of every routing object.
    pub dag: Dag,
    /// The versioned resources; `Err` when they could not be encoded (the
    /// DAG and statuses are still good).
    pub snapshot: Result<Arc<Snapshot>, Arc<JsonError>>,
}

impl Engine {
    /// An engine that remembers nothing yet.
    pub fn new(config: BuilderConfig) -> Self {
        Self {
            config,
            roots: roots::Roots::default(),
            translator: translate::Translator::default(),
        }
    }

    /// The builder settings.
    pub fn config(&self) -> &BuilderConfig {
        &self.config
    }

    /// Builds from `cache`, exactly as the full path would.
    pub fn apply(&mut self, cache: &Cache) -> Output {
        let dag = self.build(cache);
        let snapshot = self.snapshot(&dag, cache);
        Output { dag, snapshot }
    }

    /// The DAG half of [`Engine::apply`]: `dag::build(cache, config)`.
    pub fn build(&mut self, cache: &Cache) -> Dag {
        self.roots.update(cache, &self.config)
    }

    /// The translation half of [`Engine::apply`]:
    /// `Snapshot::build(&envoy::translate(dag, cache))`.
    pub fn snapshot(&mut self, dag: &Dag, cache: &Cache) -> Result<Arc<Snapshot>, Arc<JsonError>> {
        match self.translator.snapshot(dag, cache) {
            Ok(s) => Ok(Arc::new(s)),
            Err(e) => {
                // Forget the pieces: the next build starts afresh.
                self.translator = translate::Translator::default();
                Err(Arc::new(e))
            }
        }
    }

    /// Whether the last build patched the previous DAG (see [`fast`]).
    pub fn last_patched(&self) -> bool {
        self.roots.last_fast
    }

    /// How many HTTPProxy roots the last build replayed and processed afresh.
    pub fn last_roots(&self) -> (usize, usize) {
        (self.roots.last_replayed, self.roots.last_processed)
    }
}
