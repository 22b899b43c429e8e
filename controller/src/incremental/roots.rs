//! The DAG half of the engine: the result of each HTTPProxy root, kept with
//! everything it read, and replayed while nothing it read has changed.
//!
//! A root is processed by [`process_root`], which reads the cache only
//! through a [`Source`], writes only its own fqdn's virtual hosts, the
//! statuses of the proxies it walks (reading only those) and the set of
//! reached proxies (only adding). So it is run once on a scratch DAG with a
//! [`Tracked`] view; its writes are remembered with its reads. Its result
//! is replayed into the real DAG when (1) every object it read is still the
//! same object, (2) the root's incoming status is the same, and (3) nothing
//! it would write already exists (no Ingress or IngressRoute made its
//! virtual host, no earlier root walked the same proxies). Otherwise the
//! root is processed on the real DAG exactly as the full build does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use contour_crds::{HTTPProxy, TLSCertificateDelegation};

use crate::cache::{Cache, Key};
use crate::dag::builder::{self, visible};
use crate::dag::httpproxy::{ProxyStatuses, process_root};
use crate::dag::source::{Reads, Tracked};
use crate::dag::status::ObjectStatus;
use crate::dag::{BuilderConfig, Dag, Listener, SecureVirtualHost, VirtualHost};

/// What one root wrote.
#[derive(Debug, Clone)]
pub(super) struct Output {
    /// Plain virtual hosts: `(listener, fqdn, host)`.
    pub(super) vhosts: Vec<(String, String, Arc<VirtualHost>)>,
    /// TLS virtual hosts: `(listener, fqdn, host)`.
    pub(super) secure: Vec<(String, String, Arc<SecureVirtualHost>)>,
    /// Final statuses of every proxy walked, the root included.
    pub(super) statuses: Vec<(Key, ObjectStatus)>,
    /// Proxies reached.
    pub(super) reached: Vec<Key>,
}

#[derive(Debug, Clone)]
pub(super) struct Memo {
    pub(super) input: Option<ObjectStatus>,
    pub(super) reads: Reads,
    pub(super) output: Output,
}

/// Remembered root results between builds.
#[derive(Debug, Default)]
pub struct Roots {
    pub(super) memo: HashMap<Key, Memo>,
    delegations: Vec<(Key, Arc<TLSCertificateDelegation>)>,
    /// Roots replayed / processed during the last build (for tests and logs).
    pub last_replayed: usize,
    /// Roots processed afresh during the last build.
    pub last_processed: usize,
    /// Whether the last build was a patch.
    pub last_fast: bool,
    /// What the next build can patch (see [`super::fast`]); `None` when
    /// the last build cannot be patched.
    pub(super) state: Option<super::fast::State>,
}

/// A DAG with the same listeners as `dag` and no virtual hosts.
fn empty_like(dag: &Dag) -> Dag {
    Dag {
        listeners: dag
            .listeners
            .iter()
            .map(|(n, l)| {
                (
                    n.clone(),
                    Listener {
                        name: l.name.clone(),
                        address: l.address.clone(),
                        port: l.port,
                        access_log: l.access_log.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// Runs a root on a scratch DAG, recording what it reads and writes.
pub(super) fn record(
    cache: &Cache,
    config: &BuilderConfig,
    key: &Key,
    proxy: &Arc<HTTPProxy>,
    dag: &Dag,
    input: Option<&ObjectStatus>,
) -> Memo {
    let tracked = Tracked::new(cache);
    let mut scratch = empty_like(dag);
    let mut statuses: ProxyStatuses = input
        .map(|s| (key.clone(), s.clone()))
        .into_iter()
        .collect();
    let mut reached = BTreeSet::new();
    process_root(
        &tracked,
        config,
        key,
        proxy,
        &mut scratch,
        &mut statuses,
        &mut reached,
    );
    let mut reads = tracked.into_reads();
    reads
        .httpproxies
        .insert(key.clone(), Some(Arc::clone(proxy)));
    let mut output = Output {
        vhosts: vec![],
        secure: vec![],
        statuses: statuses.into_iter().collect(),
        reached: reached.into_iter().collect(),
    };
    for (name, l) in scratch.listeners {
        for (fqdn, v) in l.virtual_hosts {
            output.vhosts.push((name.clone(), fqdn, v));
        }
        for (fqdn, v) in l.secure_virtual_hosts {
            output.secure.push((name.clone(), fqdn, v));
        }
    }
    Memo {
        input: input.cloned(),
        reads,
        output,
    }
}

/// Whether replaying `out` gives what processing the root on `dag` and
/// `statuses` would: nothing it writes exists yet, except the root's status.
fn applicable(out: &Output, key: &Key, dag: &Dag, statuses: &ProxyStatuses) -> bool {
    let free = |listener: &str, fqdn: &str, secure: bool| {
        dag.listeners.get(listener).is_some_and(|l| {
            if secure {
                !l.secure_virtual_hosts.contains_key(fqdn)
            } else {
                !l.virtual_hosts.contains_key(fqdn)
            }
        })
    };
    out.vhosts.iter().all(|(l, f, _)| free(l, f, false))
        && out.secure.iter().all(|(l, f, _)| free(l, f, true))
        && out
            .statuses
            .iter()
            .all(|(k, _)| k == key || !statuses.contains_key(k))
}

fn replay(
    out: &Output,
    key: &Key,
    dag: &mut Dag,
    statuses: &mut ProxyStatuses,
    reached: &mut BTreeSet<Key>,
) {
    for (l, fqdn, v) in &out.vhosts {
        if let Some(l) = dag.listeners.get_mut(l) {
            l.virtual_hosts.insert(fqdn.clone(), Arc::clone(v));
        }
    }
    for (l, fqdn, v) in &out.secure {
        if let Some(l) = dag.listeners.get_mut(l) {
            l.secure_virtual_hosts.insert(fqdn.clone(), Arc::clone(v));
        }
    }
    if !out.statuses.iter().any(|(k, _)| k == key) {
        statuses.remove(key);
    }
    for (k, s) in &out.statuses {
        statuses.insert(k.clone(), s.clone());
    }
    reached.extend(out.reached.iter().cloned());
}

impl Roots {
    /// The DAG of `cache`: the last one patched when it can be (see
    /// [`super::fast`]), else a build that replays remembered roots.
    pub fn update(&mut self, cache: &Cache, config: &BuilderConfig) -> Dag {
        if let Some(mut state) = self.state.take()
            && let Some((dag, processed)) = state.patch(&mut self.memo, cache, config)
        {
            self.state = Some(state);
            self.last_fast = true;
            self.last_processed = processed;
            self.last_replayed = 0;
            return dag;
        }
        self.last_fast = false;
        self.build(cache, config)
    }

    /// Builds the DAG as [`crate::dag::build`] does, replaying remembered
    /// root results where they still hold, and notes what the next build
    /// needs to patch this one.
    pub fn build(&mut self, cache: &Cache, config: &BuilderConfig) -> Dag {
        let delegations: Vec<(Key, Arc<TLSCertificateDelegation>)> = cache
            .delegations
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        let delegations_same = delegations.len() == self.delegations.len()
            && delegations
                .iter()
                .zip(&self.delegations)
                .all(|((ka, a), (kb, b))| ka == kb && Arc::ptr_eq(a, b));
        self.delegations = delegations;
        let filtered = visible(cache, config);
        let view = filtered.as_ref().unwrap_or(cache);
        let tracked = Tracked::new(view);
        let globals = builder::globals(&tracked, config);
        let globals_reads = tracked.into_reads();
        let globals_hosts: HashSet<String> = globals
            .listeners
            .values()
            .flat_map(|l| l.virtual_hosts.keys().chain(l.secure_virtual_hosts.keys()))
            .cloned()
            .collect();
        let mut seen: BTreeMap<Key, ()> = BTreeMap::new();
        let mut applied: HashSet<Key> = HashSet::new();
        let mut in_place = false;
        let (mut replayed, mut processed) = (0, 0);
        let memo = &mut self.memo;
        let dag = builder::finish(
            view,
            config,
            globals,
            &mut |cache, config, key, proxy, dag, statuses, reached| {
                seen.insert(key.clone(), ());
                let input = statuses.get(key);
                let hit = memo.get(key).is_some_and(|m| {
                    m.input.as_ref() == input && m.reads.still_valid(cache, delegations_same)
                });
                if !hit {
                    let m = record(cache, config, key, proxy, dag, input);
                    memo.insert(key.clone(), m);
                    processed += 1;
                } else {
                    replayed += 1;
                }
                match memo.get(key) {
                    Some(m) if applicable(&m.output, key, dag, statuses) => {
                        applied.insert(key.clone());
                        replay(&m.output, key, dag, statuses, reached)
                    }
                    _ => {
                        in_place = true;
                        process_root(cache, config, key, proxy, dag, statuses, reached)
                    }
                }
            },
        );
        memo.retain(|k, _| seen.contains_key(k));
        self.last_replayed = replayed;
        self.last_processed = processed;
        // A build the fast path cannot patch: objects of other classes
        // hidden, or roots that share hosts or proxies with others.
        self.state = (filtered.is_none() && !in_place)
            .then(|| {
                super::fast::State::new(
                    cache,
                    config,
                    &dag,
                    &self.memo,
                    applied,
                    globals_hosts,
                    globals_reads,
                )
            })
            .flatten();
        dag
    }
}
