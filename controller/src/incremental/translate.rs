//! The translation half of the engine: `envoy::translate` followed by
//! `Snapshot::build`, with every piece remembered next to the DAG value it
//! came from and reused while that value is equal. Big resources
//! (`ingress_http`'s route configuration, `ingress_https`) are assembled
//! from remembered canonical pieces (see [`super::splice`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster as EnvoyCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener as EnvoyListener};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, VirtualHost as EnvoyVirtualHost,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use prost::{Message, Name};

use super::splice::splice;
use crate::cache::Cache;
use crate::dag::{Cluster, Dag, HTTP_LISTENER, SecureVirtualHost, TlsSecret, VirtualHost};
use crate::envoy::canonical::canonical_bytes;
use crate::envoy::json::JsonError;
use crate::envoy::{cluster, endpoint, listener, route, secret};
use crate::xds::snapshot::{Snapshot, TypeSnapshot, VersionedResource};
use crate::xds::type_url;

type Versioned = Arc<VersionedResource>;
/// Canonical bytes of a piece, shared between the maps.
type Bytes = Arc<Vec<u8>>;
/// `(listener, fqdn)`.
type HostKey = (String, String);

fn canonical<M: Message + Name>(m: &M) -> Result<Vec<u8>, JsonError> {
    canonical_bytes(&M::full_name(), m)
}

fn versioned<M: Message + Name>(name: String, m: &M) -> Result<Versioned, JsonError> {
    Ok(Arc::new(VersionedResource::new(
        name,
        M::type_url(),
        canonical(m)?,
    )))
}

/// Remembered pieces of the last translation. Maps are rebuilt on every
/// pass from what was used, so nothing stale stays.
#[derive(Debug, Default)]
pub struct Translator {
    /// Cluster names by the address of the (kept alive) DAG cluster.
    cluster_names: HashMap<usize, (Arc<Cluster>, String)>,
    clusters: HashMap<String, (Arc<Cluster>, Versioned)>,
    endpoints: HashMap<String, (Vec<Arc<EndpointSlice>>, String, Versioned)>,
    secret_names: HashMap<usize, (Arc<TlsSecret>, String)>,
    secrets: HashMap<String, (Arc<TlsSecret>, Versioned)>,
    /// Canonical `VirtualHost` of plain hosts, by fqdn.
    vhosts: HashMap<String, (Arc<VirtualHost>, Arc<Vec<u8>>)>,
    /// Canonical `VirtualHost` of TLS hosts, by listener and fqdn.
    secure_vhosts: HashMap<HostKey, (Arc<SecureVirtualHost>, Bytes)>,
    /// `https/<fqdn>` route configurations, with the host bytes they hold.
    https_routes: HashMap<String, (Arc<Vec<u8>>, Versioned)>,
    /// Canonical filter chains of TLS hosts, by listener and fqdn.
    chains: HashMap<HostKey, (Arc<SecureVirtualHost>, Bytes)>,
    /// The runtime layers (they never change).
    runtime: Option<TypeSnapshot>,
}

/// Takes `key`'s entry out of `old` when `keep` says it still holds.
fn reuse<K: std::hash::Hash + Eq, V>(
    old: &mut HashMap<K, V>,
    key: &K,
    keep: impl FnOnce(&V) -> bool,
) -> Option<V> {
    match old.get(key) {
        Some(v) if keep(v) => old.remove(key),
        _ => None,
    }
}

/// Whether two shared values are equal, by identity first.
fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

fn ptr<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as usize
}

impl Translator {
    /// `Snapshot::build(&envoy::translate(dag, cache))`, from remembered pieces.
    pub fn snapshot(&mut self, dag: &Dag, cache: &Cache) -> Result<Snapshot, JsonError> {
        let mut types = BTreeMap::new();
        types.insert(type_url::LISTENER, self.listeners(dag)?);
        types.insert(type_url::ROUTE, self.routes(dag)?);
        let clusters = self.dag_clusters(dag);
        types.insert(type_url::CLUSTER, self.clusters(&clusters)?);
        types.insert(type_url::ENDPOINT, self.endpoints(&clusters, cache)?);
        types.insert(type_url::SECRET, self.secrets(dag)?);
        let runtime = match self.runtime.take() {
            Some(r) => r,
            None => {
                crate::xds::snapshot::runtime_snapshot(&crate::envoy::runtime::runtime_layers())?
            }
        };
        types.insert(type_url::RUNTIME, runtime.clone());
        self.runtime = Some(runtime);
        Ok(Snapshot { types })
    }

    fn dag_clusters(&mut self, dag: &Dag) -> BTreeMap<String, Arc<Cluster>> {
        let mut old = std::mem::take(&mut self.cluster_names);
        let mut next = HashMap::with_capacity(old.len());
        let out = cluster::dag_clusters_named(dag, &mut |c| {
            let p = ptr(c);
            if let Some((_, n)) = next.get(&p) {
                return String::clone(n);
            }
            let entry = old
                .remove(&p)
                .unwrap_or_else(|| (Arc::clone(c), cluster::cluster_name(c)));
            let n = entry.1.clone();
            next.insert(p, entry);
            n
        });
        self.cluster_names = next;
        out
    }

    fn clusters(
        &mut self,
        dag: &BTreeMap<String, Arc<Cluster>>,
    ) -> Result<TypeSnapshot, JsonError> {
        let mut old = std::mem::take(&mut self.clusters);
        let mut resources = BTreeMap::new();
        for (name, c) in dag {
            let entry = match reuse(&mut old, name, |(k, _)| Arc::ptr_eq(k, c) || **k == **c) {
                Some(e) => e,
                None => (
                    Arc::clone(c),
                    versioned::<EnvoyCluster>(
                        name.clone(),
                        &cluster::envoy_cluster(name.clone(), c),
                    )?,
                ),
            };
            resources.insert(name.clone(), Arc::clone(&entry.1));
            self.clusters.insert(name.clone(), entry);
        }
        Ok(TypeSnapshot::new(resources))
    }

    fn endpoints(
        &mut self,
        clusters: &BTreeMap<String, Arc<Cluster>>,
        cache: &Cache,
    ) -> Result<TypeSnapshot, JsonError> {
        let index = endpoint::SliceIndex::new(cache);
        let mut old = std::mem::take(&mut self.endpoints);
        let mut resources = BTreeMap::new();
        for c in clusters.values().filter(|c| c.external_name.is_none()) {
            let name = c.eds_name();
            if resources.contains_key(&name) {
                continue;
            }
            let slices = index.slices(c);
            let same = |(s, port, _): &(Vec<Arc<EndpointSlice>>, String, Versioned)| {
                *port == c.port_name
                    && s.len() == slices.len()
                    && s.iter().zip(slices).all(|(a, b)| Arc::ptr_eq(a, b))
            };
            let entry = match reuse(&mut old, &name, same) {
                Some(e) => e,
                None => {
                    let cla = endpoint::assignment(name.clone(), &index.ready_addresses(c));
                    (
                        slices.iter().map(|s| Arc::clone(s)).collect(),
                        c.port_name.clone(),
                        versioned::<ClusterLoadAssignment>(name.clone(), &cla)?,
                    )
                }
            };
            resources.insert(name.clone(), Arc::clone(&entry.2));
            self.endpoints.insert(name, entry);
        }
        Ok(TypeSnapshot::new(resources))
    }

    fn secrets(&mut self, dag: &Dag) -> Result<TypeSnapshot, JsonError> {
        let mut old_names = std::mem::take(&mut self.secret_names);
        let mut old = std::mem::take(&mut self.secrets);
        let mut resources = BTreeMap::new();
        for l in dag.listeners.values() {
            for vh in l.secure_virtual_hosts.values() {
                for s in vh.secret.iter().chain(&vh.fallback_certificate) {
                    let p = ptr(s);
                    let name = match self.secret_names.get(&p) {
                        Some((_, n)) => n.clone(),
                        None => {
                            let e = old_names
                                .remove(&p)
                                .unwrap_or_else(|| (Arc::clone(s), secret::secret_name(s)));
                            let n = e.1.clone();
                            self.secret_names.insert(p, e);
                            n
                        }
                    };
                    if resources.contains_key(&name) {
                        continue;
                    }
                    let entry = match reuse(&mut old, &name, |(k, _)| **k == **s) {
                        Some(e) => e,
                        None => (
                            Arc::clone(s),
                            versioned::<Secret>(
                                name.clone(),
                                &secret::sds_secret(name.clone(), s),
                            )?,
                        ),
                    };
                    resources.insert(name.clone(), Arc::clone(&entry.1));
                    self.secrets.insert(name, entry);
                }
            }
        }
        Ok(TypeSnapshot::new(resources))
    }

    fn listeners(&mut self, dag: &Dag) -> Result<TypeSnapshot, JsonError> {
        let mut old = std::mem::take(&mut self.chains);
        let mut resources = BTreeMap::new();
        for l in dag.listeners.values() {
            let (shell, at) = listener::listener_shell(l);
            let mut chains = Vec::with_capacity(l.secure_virtual_hosts.len());
            for (fqdn, svh) in &l.secure_virtual_hosts {
                let key = (l.name.clone(), fqdn.clone());
                let entry = match reuse(&mut old, &key, |(k, _)| same(k, svh)) {
                    Some(e) => e,
                    None => {
                        let chain = listener::secure_chain(&l.name, fqdn, svh);
                        (Arc::clone(svh), Arc::new(canonical::<FilterChain>(&chain)?))
                    }
                };
                chains.push(Arc::clone(&entry.1));
                self.chains.insert(key, entry);
            }
            let bytes = splice(
                &canonical(&shell)?,
                3,
                at,
                chains.iter().map(|c| c.as_slice()),
            )?;
            resources.insert(
                l.name.clone(),
                Arc::new(VersionedResource::new(
                    l.name.clone(),
                    EnvoyListener::type_url(),
                    bytes,
                )),
            );
        }
        Ok(TypeSnapshot::new(resources))
    }

    fn routes(&mut self, dag: &Dag) -> Result<TypeSnapshot, JsonError> {
        let mut old_vhosts = std::mem::take(&mut self.vhosts);
        let mut old_secure = std::mem::take(&mut self.secure_vhosts);
        let mut old_https = std::mem::take(&mut self.https_routes);
        let mut resources = BTreeMap::new();
        let config = |name: &str, hosts: &[Arc<Vec<u8>>]| -> Result<Versioned, JsonError> {
            let base = canonical(&RouteConfiguration {
                name: name.to_string(),
                ..Default::default()
            })?;
            let bytes = splice(&base, 2, 0, hosts.iter().map(|h| h.as_slice()))?;
            Ok(Arc::new(VersionedResource::new(
                name.to_string(),
                RouteConfiguration::type_url(),
                bytes,
            )))
        };
        let host_bytes = |v: &VirtualHost| -> Result<Arc<Vec<u8>>, JsonError> {
            Ok(Arc::new(canonical::<EnvoyVirtualHost>(
                &route::virtual_host(v),
            )?))
        };
        if let Some(l) = dag.listeners.get(HTTP_LISTENER) {
            let mut hosts = Vec::with_capacity(l.virtual_hosts.len());
            for (fqdn, v) in &l.virtual_hosts {
                let entry = match reuse(&mut old_vhosts, fqdn, |(k, _)| same(k, v)) {
                    Some(e) => e,
                    None => (Arc::clone(v), host_bytes(v)?),
                };
                hosts.push(Arc::clone(&entry.1));
                self.vhosts.insert(fqdn.clone(), entry);
            }
            resources.insert(HTTP_LISTENER.to_string(), config(HTTP_LISTENER, &hosts)?);
        }
        for l in dag.listeners.values() {
            let mut fallback = Vec::new();
            for (fqdn, svh) in l
                .secure_virtual_hosts
                .iter()
                .filter(|(_, s)| s.tcp_proxy.is_none())
            {
                let key = (l.name.clone(), fqdn.clone());
                let entry = match reuse(&mut old_secure, &key, |(k, _)| {
                    Arc::ptr_eq(k, svh) || k.virtual_host == svh.virtual_host
                }) {
                    Some(e) => e,
                    None => (Arc::clone(svh), host_bytes(&svh.virtual_host)?),
                };
                let host = Arc::clone(&entry.1);
                self.secure_vhosts.insert(key, entry);
                if svh.fallback_certificate.is_some() {
                    fallback.push(Arc::clone(&host));
                }
                let name = format!("https/{fqdn}");
                let rc = match reuse(&mut old_https, &name, |(h, _)| Arc::ptr_eq(h, &host)) {
                    Some(e) => e,
                    None => (
                        Arc::clone(&host),
                        config(&name, std::slice::from_ref(&host))?,
                    ),
                };
                resources.insert(name.clone(), Arc::clone(&rc.1));
                self.https_routes.insert(name, rc);
            }
            if !fallback.is_empty() {
                let name = listener::FALLBACK_ROUTE_CONFIG;
                resources.insert(name.to_string(), config(name, &fallback)?);
            }
        }
        Ok(TypeSnapshot::new(resources))
    }
}
