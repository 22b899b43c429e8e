//! The fast path of the DAG half: patch the last DAG with the objects the
//! cache journal says changed, instead of walking every root.
//!
//! A full build ([`super::roots`]) leaves a [`State`] when its result is
//! made of independent pieces: every HTTPProxy root was replayed from its
//! remembered result (no root shares a virtual host with an Ingress, an
//! IngressRoute or another root, and no proxy is reached from two roots),
//! and no object was hidden by the ingress class filter. Then a change
//! touches only the roots that read a changed object, the roots whose fqdn
//! claims changed, and the statuses of proxies those roots reached or stop
//! reaching. Whatever the patch cannot vouch for (an Ingress, IngressRoute
//! or delegation changed, an object the Ingresses read changed, a root
//! would now share something) sends the build back to the full path.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::roots::{Memo, record};
use crate::cache::{Cache, Key, Kind, Position};
use crate::dag::builder::{self, proxy_visible, pruned_host, pruned_secure_host};
use crate::dag::httpproxy::{claimed_fqdn, finished, orphan_status, root_input, status_ref};
use crate::dag::source::Reads;
use crate::dag::{BuilderConfig, Dag, Listener};

/// Everything a patch needs besides the root memo.
#[derive(Debug)]
pub struct State {
    /// Where in the cache journal the DAG stands.
    at: Position,
    /// The DAG as published.
    dag: Dag,
    /// Host names Ingresses and IngressRoutes made (on any listener).
    globals_hosts: HashSet<String>,
    /// What the Ingresses and IngressRoutes read.
    globals_reads: Reads,
    /// Roots claiming each fqdn (lower case), in key order.
    claims: HashMap<String, BTreeSet<Key>>,
    /// The fqdn each root claims.
    claim_of: HashMap<Key, String>,
    /// The roots whose remembered result read each object.
    readers: HashMap<(Kind, Key), HashSet<Key>>,
    /// The root that reached each proxy (one at most, or no state).
    reached_by: HashMap<Key, Key>,
    /// Roots whose remembered result is what the DAG holds.
    applied: HashSet<Key>,
}

fn read_keys(reads: &Reads) -> impl Iterator<Item = (Kind, &Key)> {
    let proxies = reads.httpproxies.keys().map(|k| (Kind::HTTPProxy, k));
    let services = reads.services.keys().map(|k| (Kind::Service, k));
    let secrets = reads.secrets.keys().map(|k| (Kind::Secret, k));
    proxies.chain(services).chain(secrets)
}

fn is_root(cache: &Cache, key: &Key) -> bool {
    cache
        .httpproxies
        .get(key)
        .is_some_and(|p| p.spec.virtual_host.is_some())
}

impl State {
    /// The state after a full build of `dag` from `cache`, when every root
    /// in `memo` was replayed (`applied`); `None` when the pieces are not
    /// independent.
    pub(super) fn new(
        cache: &Cache,
        config: &BuilderConfig,
        dag: &Dag,
        memo: &HashMap<Key, Memo>,
        applied: HashSet<Key>,
        globals_hosts: HashSet<String>,
        globals_reads: Reads,
    ) -> Option<Self> {
        let mut state = Self {
            at: cache.position(),
            dag: dag.clone(),
            globals_hosts,
            globals_reads,
            claims: HashMap::new(),
            claim_of: HashMap::new(),
            readers: HashMap::new(),
            reached_by: HashMap::new(),
            applied: HashSet::new(),
        };
        for (root, m) in memo {
            if !applied.contains(root) || !state.independent(cache, root, m) {
                return None;
            }
            state.adopt(root, m);
        }
        for (key, proxy) in &cache.httpproxies {
            if proxy.spec.virtual_host.is_some()
                && let Ok(fqdn) = claimed_fqdn(config, key, proxy)
            {
                state
                    .claims
                    .entry(fqdn.clone())
                    .or_default()
                    .insert(key.clone());
                state.claim_of.insert(key.clone(), fqdn);
            }
        }
        Some(state)
    }

    /// Whether the result `m` of `root` shares nothing with other roots:
    /// it reaches no root but itself and no proxy another root reached,
    /// and writes statuses only of what it reached.
    fn independent(&self, cache: &Cache, root: &Key, m: &Memo) -> bool {
        let reached_ok = m.output.reached.iter().all(|k| {
            self.reached_by.get(k).is_none_or(|r| r == root) && (k == root || !is_root(cache, k))
        });
        reached_ok
            && m.output
                .statuses
                .iter()
                .all(|(k, _)| k == root || m.output.reached.contains(k))
    }

    /// Notes `root`'s result `m` as part of the DAG (the DAG itself is
    /// written by the caller).
    fn adopt(&mut self, root: &Key, m: &Memo) {
        for k in &m.output.reached {
            self.reached_by.insert(k.clone(), root.clone());
        }
        for (kind, k) in read_keys(&m.reads) {
            self.readers
                .entry((kind, k.clone()))
                .or_default()
                .insert(root.clone());
        }
        self.applied.insert(root.clone());
    }

    /// Takes `root`'s result `m` out of the DAG; the proxies it reached or
    /// wrote a status for go into `check`.
    fn forget(&mut self, root: &Key, m: &Memo, check: &mut BTreeSet<Key>) {
        for (l, fqdn, _) in &m.output.vhosts {
            if let Some(l) = self.dag.listeners.get_mut(l) {
                l.virtual_hosts.remove(fqdn);
            }
        }
        for (l, fqdn, _) in &m.output.secure {
            if let Some(l) = self.dag.listeners.get_mut(l) {
                l.secure_virtual_hosts.remove(fqdn);
            }
        }
        for (k, _) in &m.output.statuses {
            self.dag.statuses.remove(&status_ref(k));
            check.insert(k.clone());
        }
        for k in &m.output.reached {
            self.reached_by.remove(k);
            check.insert(k.clone());
        }
        for (kind, k) in read_keys(&m.reads) {
            if let Some(set) = self.readers.get_mut(&(kind, k.clone())) {
                set.remove(root);
                if set.is_empty() {
                    self.readers.remove(&(kind, k.clone()));
                }
            }
        }
        self.applied.remove(root);
    }

    fn listener(&mut self, name: &str, config: &BuilderConfig) -> &mut Listener {
        self.dag
            .listeners
            .entry(name.to_string())
            .or_insert_with(|| {
                builder::listeners(config)
                    .listeners
                    .remove(name)
                    .unwrap_or_default()
            })
    }

    /// Moves the claim of `key` to what it claims now; every root claiming
    /// either fqdn goes into `dirty` (its duplicate status may change).
    fn reclaim(
        &mut self,
        config: &BuilderConfig,
        cache: &Cache,
        key: &Key,
        dirty: &mut BTreeSet<Key>,
    ) {
        let new = cache
            .httpproxies
            .get(key)
            .filter(|p| p.spec.virtual_host.is_some())
            .and_then(|p| claimed_fqdn(config, key, p).ok());
        let old = self.claim_of.get(key).cloned();
        if old == new {
            return;
        }
        if let Some(f) = &old {
            if let Some(set) = self.claims.get_mut(f) {
                dirty.extend(set.iter().cloned());
                set.remove(key);
                if set.is_empty() {
                    self.claims.remove(f);
                }
            }
            self.claim_of.remove(key);
        }
        if let Some(f) = new {
            let set = self.claims.entry(f.clone()).or_default();
            dirty.extend(set.iter().cloned());
            set.insert(key.clone());
            self.claim_of.insert(key.clone(), f);
        }
    }

    /// The DAG of `cache`, patched from the last one; `None` when the
    /// change needs the full path. On `None` the state is spent (the
    /// caller drops it); the memo stays good either way.
    pub(super) fn patch(
        &mut self,
        memo: &mut HashMap<Key, Memo>,
        cache: &Cache,
        config: &BuilderConfig,
    ) -> Option<(Dag, usize)> {
        let changes = cache.changes_since(self.at)?;
        let mut dirty: BTreeSet<Key> = BTreeSet::new();
        let mut proxies: BTreeSet<Key> = BTreeSet::new();
        for (kind, key) in changes {
            let global = match kind {
                Kind::Ingress | Kind::IngressRoute | Kind::Delegation => true,
                Kind::EndpointSlice => continue,
                Kind::Service => self.globals_reads.services.contains_key(key),
                Kind::Secret => self.globals_reads.secrets.contains_key(key),
                Kind::HTTPProxy => {
                    proxies.insert(key.clone());
                    self.globals_reads.httpproxies.contains_key(key)
                }
            };
            if global {
                return None;
            }
            if let Some(roots) = self.readers.get(&(*kind, key.clone())) {
                dirty.extend(roots.iter().cloned());
            }
        }
        for key in &proxies {
            if cache
                .httpproxies
                .get(key)
                .is_some_and(|p| !proxy_visible(config, p))
            {
                return None;
            }
            dirty.insert(key.clone());
            self.reclaim(config, cache, key, &mut dirty);
        }

        // Take the dirty roots' results out.
        let mut check: BTreeSet<Key> = proxies;
        for r in &dirty {
            self.dag.statuses.remove(&status_ref(r));
            if self.applied.contains(r)
                && let Some(m) = memo.get(r)
            {
                self.forget(r, m, &mut check);
            }
        }

        // Process them again (or replay what still holds).
        let scratch = builder::listeners(config);
        let mut processed = 0;
        for r in &dirty {
            let Some(proxy) = cache.httpproxies.get(r) else {
                memo.remove(r);
                continue;
            };
            if proxy.spec.virtual_host.is_none() {
                memo.remove(r);
                check.insert(r.clone());
                continue;
            }
            let input = match claimed_fqdn(config, r, proxy) {
                Err(status) => {
                    self.dag.statuses.insert(status_ref(r), finished(status));
                    memo.remove(r);
                    continue;
                }
                Ok(fqdn) => {
                    let claimants = self.claims.get(&fqdn)?;
                    let status = root_input(proxy, &fqdn, claimants.iter());
                    if !status.is_valid() {
                        self.dag.statuses.insert(status_ref(r), finished(status));
                        memo.remove(r);
                        continue;
                    }
                    if self.globals_hosts.contains(&fqdn) {
                        return None;
                    }
                    status
                }
            };
            let hit = memo.get(r).is_some_and(|m| {
                m.input.as_ref() == Some(&input) && m.reads.still_valid(cache, true)
            });
            if !hit {
                let m = record(cache, config, r, proxy, &scratch, Some(&input));
                memo.insert(r.clone(), m);
                processed += 1;
            }
            let m = memo.get(r)?;
            if !self.independent(cache, r, m) {
                return None;
            }
            for (l, fqdn, v) in &m.output.vhosts {
                if let Some(v) = pruned_host(Arc::clone(v)) {
                    self.listener(l, config)
                        .virtual_hosts
                        .insert(fqdn.clone(), v);
                }
            }
            for (l, fqdn, v) in &m.output.secure {
                if let Some(v) = pruned_secure_host(Arc::clone(v)) {
                    self.listener(l, config)
                        .secure_virtual_hosts
                        .insert(fqdn.clone(), v);
                }
            }
            for (k, s) in &m.output.statuses {
                self.dag.statuses.insert(status_ref(k), finished(s.clone()));
            }
            self.adopt(r, m);
        }

        // Proxies no root reaches any more (or that changed unreached) are
        // orphans; removed ones lose their status.
        for k in &check {
            if self.reached_by.contains_key(k) || dirty.contains(k) && is_root(cache, k) {
                continue;
            }
            match cache.httpproxies.get(k) {
                None => {
                    self.dag.statuses.remove(&status_ref(k));
                }
                Some(p) if p.spec.virtual_host.is_some() => {}
                Some(p) => {
                    self.dag
                        .statuses
                        .insert(status_ref(k), finished(orphan_status(p)));
                }
            }
        }
        self.dag
            .listeners
            .retain(|_, l| !(l.virtual_hosts.is_empty() && l.secure_virtual_hosts.is_empty()));
        self.at = cache.position();
        Some((self.dag.clone(), processed))
    }
}
