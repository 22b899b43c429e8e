//! The translation half of the engine: `envoy::translate` followed by
//! `Snapshot::build`, computed from what changed since the last call.
//!
//! The DAG's host maps are persistent, so the hosts that differ from the
//! last translated DAG are found by walking only the nodes the two do not
//! share (after a patched build, a handful). Each added, removed or
//! replaced host adds or removes its pieces: its canonical bytes in
//! `ingress_http` or `https/<fqdn>`, its filter chain, and references to
//! the clusters and secrets it uses (counted, so a cluster leaves when its
//! last user does). EndpointSlices come from the cache journal. Only the
//! resources touched are encoded again; the big ones (`ingress_http`'s
//! route configuration, the TLS listener) are spliced from remembered
//! canonical pieces (see [`super::splice`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster as EnvoyCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener as EnvoyListener};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, VirtualHost as EnvoyVirtualHost,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use imbl::OrdMap;
use prost::{Message, Name};

use super::splice::splice;
use crate::cache::{Cache, Key, Kind, Position, SliceRecord};
use crate::dag::{
    Cluster, Dag, HTTP_LISTENER, Layout, Listener, RouteAction, SecureVirtualHost, TlsSecret,
    VirtualHost, diff_sides,
};
use crate::envoy::canonical::canonical_bytes;
use crate::envoy::json::JsonError;
use crate::envoy::{cluster, endpoint, listener, route, scoped, secret};
use crate::smallmap::SmallMap;
use crate::xds::snapshot::{Snapshot, TypeSnapshot, VersionedResource};
use crate::xds::type_url;

/// Canonical bytes of a piece.
type Bytes = Arc<Vec<u8>>;
/// `(namespace, service)`.
type ServiceKey = (String, String);

fn canonical<M: Message + Name>(m: &M) -> Result<Vec<u8>, JsonError> {
    canonical_bytes(&M::full_name(), m)
}

fn versioned<M: Message + Name>(name: String, m: &M) -> Result<Arc<VersionedResource>, JsonError> {
    Ok(Arc::new(VersionedResource::new(
        name,
        M::type_url(),
        canonical(m)?,
    )))
}

fn host_bytes(v: &VirtualHost) -> Result<Bytes, JsonError> {
    Ok(Arc::new(canonical::<EnvoyVirtualHost>(
        &route::virtual_host(v),
    )?))
}

/// A route configuration `name` holding these canonical hosts.
fn route_config<'a>(
    name: &str,
    hosts: impl Iterator<Item = &'a Bytes>,
) -> Result<Arc<VersionedResource>, JsonError> {
    let base = canonical(&RouteConfiguration {
        name: name.to_string(),
        ..Default::default()
    })?;
    let bytes = splice(&base, 2, 0, hosts.map(|h| h.as_slice()))?;
    Ok(Arc::new(VersionedResource::new(
        name.to_string(),
        RouteConfiguration::type_url(),
        bytes,
    )))
}

/// Every cluster a host's routes (and TCP proxy) use.
fn host_clusters<'a>(
    v: &'a VirtualHost,
    tcp: Option<&'a Vec<crate::dag::WeightedCluster>>,
) -> impl Iterator<Item = &'a Arc<Cluster>> {
    let routes = v.routes.iter().flat_map(|r| match &r.action {
        RouteAction::Forward(clusters) => clusters.iter().chain(r.mirror.as_ref()),
        _ => [].iter().chain(None),
    });
    tcp.into_iter()
        .flatten()
        .chain(routes)
        .map(|wc| &wc.cluster)
}

/// Adds (`add`) or removes one user of `name` (first user: `value` is
/// kept). `Some(true)` when it got its first user, `Some(false)` when it
/// lost its last, else `None`.
fn count_user<T>(
    users: &mut HashMap<String, (Arc<T>, usize)>,
    name: &str,
    value: &Arc<T>,
    add: bool,
) -> Option<bool> {
    if add {
        let e = users
            .entry(name.to_string())
            .or_insert_with(|| (Arc::clone(value), 0));
        e.1 += 1;
        return (e.1 == 1).then_some(true);
    }
    let e = users.get_mut(name)?;
    e.1 -= 1;
    if e.1 > 0 {
        return None;
    }
    users.remove(name);
    Some(false)
}

/// What one update touched and must encode again.
#[derive(Debug, Default)]
struct Touched {
    /// `ingress_http`'s route configuration.
    http: bool,
    /// Listeners by name.
    listeners: BTreeSet<String>,
    /// The fallback route configuration.
    fallback: bool,
    /// Cluster names whose users changed.
    clusters: BTreeSet<String>,
    /// EDS names that appeared, left, or whose slices changed.
    endpoints: BTreeSet<String>,
    /// Secret names that appeared or left.
    secrets: BTreeSet<String>,
}

/// EndpointSlices grouped by Service, kept up to date from the journal.
#[derive(Debug, Default)]
struct Slices {
    at: Option<Position>,
    /// Most Services have one slice: small maps.
    by_service: HashMap<ServiceKey, SmallMap<Key, Arc<SliceRecord>>>,
    owner: HashMap<Key, ServiceKey>,
}

impl Slices {
    fn put(&mut self, key: &Key, slice: Option<&Arc<SliceRecord>>) -> Vec<ServiceKey> {
        let mut changed = Vec::new();
        if let Some(old) = self.owner.remove(key) {
            if let Some(m) = self.by_service.get_mut(&old) {
                m.remove(key);
                if m.is_empty() {
                    self.by_service.remove(&old);
                }
            }
            changed.push(old);
        }
        if let Some(slice) = slice
            && let Some(service) = slice.service.as_deref()
        {
            let owner = (key.namespace.clone(), service.to_string());
            self.by_service
                .entry(owner.clone())
                .or_default()
                .insert(key.clone(), Arc::clone(slice));
            self.owner.insert(key.clone(), owner.clone());
            changed.push(owner);
        }
        changed
    }

    /// Catches up with `cache`; the Services whose slices changed, or
    /// `None` when every slice was read again.
    fn update(&mut self, cache: &Cache) -> Option<BTreeSet<ServiceKey>> {
        let changes = self.at.and_then(|at| cache.changes_since(at));
        let out = match changes {
            Some(changes) => {
                let keys: BTreeSet<&Key> = changes
                    .iter()
                    .filter(|(k, _)| *k == Kind::EndpointSlice)
                    .map(|(_, key)| key)
                    .collect();
                let mut services = BTreeSet::new();
                for key in keys {
                    services.extend(self.put(key, cache.endpoint_slices.get(key)));
                }
                Some(services)
            }
            None => {
                *self = Slices::default();
                for (key, slice) in &cache.endpoint_slices {
                    self.put(key, Some(slice));
                }
                None
            }
        };
        self.at = Some(cache.position());
        out
    }

    fn of(&self, c: &Cluster) -> impl Iterator<Item = &Arc<SliceRecord>> {
        self.by_service
            .get(&(c.namespace.clone(), c.service.clone()))
            .into_iter()
            .flat_map(|m| m.values())
    }
}

/// Remembered pieces of the last translation.
#[derive(Debug, Default)]
pub struct Translator {
    /// The DAG translated last (empty before the first).
    dag: Dag,
    slices: Slices,
    /// Canonical hosts of `ingress_http`, by fqdn.
    http_hosts: OrdMap<String, Bytes>,
    /// Canonical filter chains of TLS hosts, by listener and fqdn.
    chains: BTreeMap<String, OrdMap<String, Bytes>>,
    /// Canonical hosts served with the fallback certificate, by listener.
    fallback: BTreeMap<String, OrdMap<String, Bytes>>,
    /// The distinct DAG clusters using each cluster name, with user counts.
    clusters: HashMap<String, Vec<(Arc<Cluster>, usize)>>,
    /// The cluster each published Envoy cluster was made from.
    chosen: HashMap<String, Arc<Cluster>>,
    /// Published clusters using each EDS name (and one of them).
    endpoints: HashMap<String, (Arc<Cluster>, usize)>,
    /// EDS names in use per Service.
    eds_by_service: HashMap<ServiceKey, BTreeSet<String>>,
    /// Secrets in use by name, with user counts.
    secrets: HashMap<String, (Arc<TlsSecret>, usize)>,
    /// The result, patched in place.
    snapshot: Option<Snapshot>,
}

impl Translator {
    /// `Snapshot::build(&envoy::translate(dag, cache))`, from the last result.
    pub fn snapshot(&mut self, dag: &Dag, cache: &Cache) -> Result<Snapshot, JsonError> {
        let mut snapshot = match self.snapshot.take() {
            Some(s) => s,
            None => {
                let mut s = Snapshot::default();
                for t in [
                    type_url::LISTENER,
                    type_url::ROUTE,
                    type_url::SCOPED_ROUTE,
                    type_url::CLUSTER,
                    type_url::ENDPOINT,
                    type_url::SECRET,
                ] {
                    s.types.insert(t, TypeSnapshot::new([]));
                }
                s.types.insert(
                    type_url::RUNTIME,
                    crate::xds::snapshot::runtime_snapshot(
                        &crate::envoy::runtime::runtime_layers(),
                    )?,
                );
                s
            }
        };
        let mut t = Touched::default();
        let old = std::mem::replace(&mut self.dag, dag.clone());
        let empty = Listener::default();
        let names: BTreeSet<&String> = old.listeners.keys().chain(dag.listeners.keys()).collect();
        for name in names {
            let a = old.listeners.get(name).unwrap_or(&empty);
            let b = dag.listeners.get(name).unwrap_or(&empty);
            let moved = a.layout() != b.layout();
            // The access log comes from the engine's fixed configuration:
            // it differs only from the empty listener of the first build,
            // where every chain is new anyway.
            if a.name != b.name
                || a.address != b.address
                || a.port != b.port
                || a.access_log != b.access_log
                || moved
            {
                t.listeners.insert(name.clone());
                t.http |= name == HTTP_LISTENER;
            }
            if moved {
                // Every plain host moves to the other layout (a setting, or
                // `auto` crossing its host count either way).
                for (fqdn, v) in &a.virtual_hosts {
                    self.plain(a, fqdn, v, false, &mut t, &mut snapshot)?;
                }
                for (fqdn, v) in &b.virtual_hosts {
                    self.plain(b, fqdn, v, true, &mut t, &mut snapshot)?;
                }
            } else {
                for d in a.virtual_hosts.diff(&b.virtual_hosts) {
                    t.listeners.insert(name.clone());
                    let (gone, came) = diff_sides(d);
                    if let Some((fqdn, v)) = gone {
                        self.plain(a, fqdn, v, false, &mut t, &mut snapshot)?;
                    }
                    if let Some((fqdn, v)) = came {
                        self.plain(b, fqdn, v, true, &mut t, &mut snapshot)?;
                    }
                }
            }
            for d in a.secure_virtual_hosts.diff(&b.secure_virtual_hosts) {
                t.listeners.insert(name.clone());
                let (gone, came) = diff_sides(d);
                if let Some((fqdn, v)) = gone {
                    self.secure(a, fqdn, v, false, &mut t, &mut snapshot)?;
                }
                if let Some((fqdn, v)) = came {
                    self.secure(b, fqdn, v, true, &mut t, &mut snapshot)?;
                }
            }
        }
        match self.slices.update(cache) {
            Some(services) => {
                for s in services {
                    if let Some(names) = self.eds_by_service.get(&s) {
                        t.endpoints.extend(names.iter().cloned());
                    }
                }
            }
            None => t.endpoints.extend(self.endpoints.keys().cloned()),
        }
        self.publish(dag, &mut t, &mut snapshot)?;
        self.snapshot = Some(snapshot.clone());
        Ok(snapshot)
    }

    fn types<'s>(snapshot: &'s mut Snapshot, t: &'static str) -> &'s mut TypeSnapshot {
        snapshot.types.entry(t).or_default()
    }

    /// Adds (`add`) or removes a plain host of listener `l`: a piece of
    /// `ingress_http`'s route configuration, or its own scope.
    fn plain(
        &mut self,
        l: &Listener,
        fqdn: &str,
        v: &Arc<VirtualHost>,
        add: bool,
        t: &mut Touched,
        snapshot: &mut Snapshot,
    ) -> Result<(), JsonError> {
        for c in host_clusters(v, None) {
            self.cluster_user(c, add, t);
        }
        if l.name != HTTP_LISTENER {
            return Ok(());
        }
        match l.layout() {
            Layout::Single => {
                t.http = true;
                if add {
                    self.http_hosts.insert(fqdn.to_string(), host_bytes(v)?);
                } else {
                    self.http_hosts.remove(fqdn);
                }
            }
            Layout::Scoped => {
                let scopes = Self::types(snapshot, type_url::SCOPED_ROUTE);
                let name = scoped::scope_name(fqdn);
                if add {
                    scopes.insert(versioned(name, &scoped::scope(v))?);
                } else {
                    scopes.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// Adds (`add`) or removes a TLS host of listener `l`.
    fn secure(
        &mut self,
        listener: &Listener,
        fqdn: &str,
        svh: &Arc<SecureVirtualHost>,
        add: bool,
        t: &mut Touched,
        snapshot: &mut Snapshot,
    ) -> Result<(), JsonError> {
        for c in host_clusters(&svh.virtual_host, svh.tcp_proxy.as_ref()) {
            self.cluster_user(c, add, t);
        }
        for s in svh.secret.iter().chain(&svh.fallback_certificate) {
            self.secret_user(s, add, t);
        }
        let l = listener.name.as_str();
        let chains = self.chains.entry(l.to_string()).or_default();
        let name = format!("https/{fqdn}");
        if add {
            let chain = listener::secure_chain(l, listener.access_log.as_ref(), fqdn, svh);
            chains.insert(
                fqdn.to_string(),
                Arc::new(canonical::<FilterChain>(&chain)?),
            );
        } else {
            chains.remove(fqdn);
        }
        if svh.tcp_proxy.is_some() {
            return Ok(());
        }
        let routes = Self::types(snapshot, type_url::ROUTE);
        let fallback = self.fallback.entry(l.to_string()).or_default();
        if add {
            let host = host_bytes(&svh.virtual_host)?;
            routes.insert(route_config(&name, std::iter::once(&host))?);
            if svh.fallback_certificate.is_some() {
                fallback.insert(fqdn.to_string(), host);
                t.fallback = true;
            }
        } else {
            routes.remove(&name);
            if fallback.remove(fqdn).is_some() {
                t.fallback = true;
            }
        }
        Ok(())
    }

    fn cluster_user(&mut self, c: &Arc<Cluster>, add: bool, t: &mut Touched) {
        let name = cluster::cluster_name(c);
        let variants = self.clusters.entry(name.clone()).or_default();
        let at = variants.iter().position(|(v, _)| **v == **c);
        match (at, add) {
            (Some(i), true) => variants[i].1 += 1,
            (None, true) => variants.push((Arc::clone(c), 1)),
            (Some(i), false) => {
                variants[i].1 -= 1;
                if variants[i].1 == 0 {
                    variants.remove(i);
                }
            }
            (None, false) => {}
        }
        if variants.is_empty() {
            self.clusters.remove(&name);
        }
        t.clusters.insert(name);
    }

    fn secret_user(&mut self, s: &Arc<TlsSecret>, add: bool, t: &mut Touched) {
        let name = secret::secret_name(s);
        if count_user(&mut self.secrets, &name, s, add).is_some() {
            t.secrets.insert(name);
        }
    }

    fn endpoint_user(&mut self, c: &Arc<Cluster>, add: bool, t: &mut Touched) {
        if c.external_name.is_some() {
            return;
        }
        let name = c.eds_name();
        let service = (c.namespace.clone(), c.service.clone());
        match count_user(&mut self.endpoints, &name, c, add) {
            Some(true) => {
                self.eds_by_service
                    .entry(service)
                    .or_default()
                    .insert(name.clone());
            }
            Some(false) => {
                if let Some(names) = self.eds_by_service.get_mut(&service) {
                    names.remove(&name);
                    if names.is_empty() {
                        self.eds_by_service.remove(&service);
                    }
                }
            }
            None => return,
        }
        t.endpoints.insert(name);
    }

    /// Encodes what `t` says changed into `snapshot`.
    fn publish(
        &mut self,
        dag: &Dag,
        t: &mut Touched,
        snapshot: &mut Snapshot,
    ) -> Result<(), JsonError> {
        // Clusters: a name used by different DAG clusters is published
        // from the first in DAG order, as the full translation does.
        let mut contested = BTreeSet::new();
        let mut chosen: Vec<(String, Option<Arc<Cluster>>)> = Vec::new();
        for name in std::mem::take(&mut t.clusters) {
            match self.clusters.get(&name).map(Vec::as_slice) {
                None | Some([]) => chosen.push((name, None)),
                Some([(c, _)]) => chosen.push((name, Some(Arc::clone(c)))),
                Some(_) => {
                    contested.insert(name);
                }
            }
        }
        if !contested.is_empty() {
            let first = cluster::dag_clusters(dag);
            for name in contested {
                let c = first.get(&name).cloned();
                chosen.push((name, c));
            }
        }
        for (name, c) in chosen {
            let before = self.chosen.get(&name).cloned();
            if before.as_deref() == c.as_deref() {
                continue;
            }
            if let Some(b) = &before {
                self.endpoint_user(b, false, t);
            }
            let clusters = Self::types(snapshot, type_url::CLUSTER);
            match c {
                Some(c) => {
                    clusters.insert(versioned::<EnvoyCluster>(
                        name.clone(),
                        &cluster::envoy_cluster(name.clone(), &c),
                    )?);
                    self.endpoint_user(&c, true, t);
                    self.chosen.insert(name, c);
                }
                None => {
                    clusters.remove(&name);
                    self.chosen.remove(&name);
                }
            }
        }

        for name in std::mem::take(&mut t.endpoints) {
            let assignments = Self::types(snapshot, type_url::ENDPOINT);
            match self.endpoints.get(&name) {
                Some((c, _)) => {
                    let addrs = endpoint::ready_addresses(self.slices.of(c), &c.port_name);
                    let cla = endpoint::assignment(name.clone(), &addrs);
                    assignments.insert(versioned::<ClusterLoadAssignment>(name, &cla)?);
                }
                None => assignments.remove(&name),
            }
        }

        for name in std::mem::take(&mut t.secrets) {
            let secrets = Self::types(snapshot, type_url::SECRET);
            match self.secrets.get(&name) {
                Some((s, _)) => {
                    secrets.insert(versioned::<Secret>(
                        name.clone(),
                        &secret::sds_secret(name.clone(), s),
                    )?);
                }
                None => secrets.remove(&name),
            }
        }

        if t.http {
            let routes = Self::types(snapshot, type_url::ROUTE);
            match dag.listeners.get(HTTP_LISTENER).map(Listener::layout) {
                Some(Layout::Single) => {
                    routes.insert(route_config(HTTP_LISTENER, self.http_hosts.values())?)
                }
                _ => routes.remove(HTTP_LISTENER),
            }
        }
        if t.fallback {
            // The last listener with such hosts wins, as in the full path.
            let hosts = self.fallback.values().rev().find(|h| !h.is_empty());
            let routes = Self::types(snapshot, type_url::ROUTE);
            let name = listener::FALLBACK_ROUTE_CONFIG;
            match hosts {
                Some(h) => routes.insert(route_config(name, h.values())?),
                None => routes.remove(name),
            }
        }

        for name in std::mem::take(&mut t.listeners) {
            let listeners = Self::types(snapshot, type_url::LISTENER);
            let Some(l) = dag.listeners.get(&name) else {
                listeners.remove(&name);
                continue;
            };
            let (shell, at) = listener::listener_shell(l);
            let chains = self.chains.get(&name);
            let bytes = splice(
                &canonical(&shell)?,
                3,
                at,
                chains
                    .into_iter()
                    .flat_map(|c| c.values())
                    .map(|c| c.as_slice()),
            )?;
            listeners.insert(Arc::new(VersionedResource::new(
                name.clone(),
                EnvoyListener::type_url(),
                bytes,
            )));
        }
        Ok(())
    }
}
