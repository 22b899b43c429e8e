//! ClusterLoadAssignments from the ready endpoints of EndpointSlices.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, address, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};

use crate::cache::{Cache, SliceRecord};
use crate::dag::Cluster;

/// One assignment per EDS cluster, named `namespace/service/portname`,
/// sorted by name. Endpoints that are not ready are left out.
pub fn load_assignments(
    clusters: &BTreeMap<String, Arc<Cluster>>,
    cache: &Cache,
) -> Vec<ClusterLoadAssignment> {
    let index = SliceIndex::new(cache);
    let mut out: BTreeMap<String, ClusterLoadAssignment> = BTreeMap::new();
    for c in clusters.values().filter(|c| c.external_name.is_none()) {
        let name = c.eds_name();
        if out.contains_key(&name) {
            continue;
        }
        let addrs = index.ready_addresses(c);
        out.insert(name.clone(), assignment(name, &addrs));
    }
    out.into_values().collect()
}

/// EndpointSlices grouped by `(namespace, service)`, built once per translation.
pub struct SliceIndex<'a> {
    by_service: BTreeMap<(&'a str, &'a str), Vec<&'a Arc<SliceRecord>>>,
}

impl<'a> SliceIndex<'a> {
    /// Groups the cache's slices by the Service they belong to.
    pub fn new(cache: &'a Cache) -> Self {
        let mut by_service: BTreeMap<(&str, &str), Vec<&Arc<SliceRecord>>> = BTreeMap::new();
        for (key, slice) in &cache.endpoint_slices {
            if let Some(service) = slice.service.as_deref() {
                by_service
                    .entry((key.namespace.as_str(), service))
                    .or_default()
                    .push(slice);
            }
        }
        Self { by_service }
    }

    /// The slices of the cluster's Service.
    pub fn slices<'s>(&'s self, c: &'s Cluster) -> &'s [&'s Arc<SliceRecord>] {
        self.by_service
            .get(&(c.namespace.as_str(), c.service.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// `(ip, port)` of every ready endpoint of the cluster's Service port.
    pub fn ready_addresses(&self, c: &Cluster) -> BTreeSet<(String, u32)> {
        let slices = self
            .by_service
            .get(&(c.namespace.as_str(), c.service.as_str()));
        ready_addresses(slices.into_iter().flatten().copied(), &c.port_name)
    }
}

/// `(ip, port)` of every ready endpoint of these slices on the port named
/// `port_name` (the records keep only ready IP addresses).
pub fn ready_addresses<'a>(
    slices: impl IntoIterator<Item = &'a Arc<SliceRecord>>,
    port_name: &str,
) -> BTreeSet<(String, u32)> {
    let mut addrs = BTreeSet::new();
    for slice in slices {
        let port = slice
            .ports
            .iter()
            .find(|(name, _)| name == port_name)
            .and_then(|(_, p)| *p)
            .and_then(|p| u32::try_from(p).ok());
        let Some(port) = port else {
            continue;
        };
        for ip in &slice.addresses {
            addrs.insert((ip.clone(), port));
        }
    }
    addrs
}

/// The assignment `name` of these addresses.
pub fn assignment(name: String, addrs: &BTreeSet<(String, u32)>) -> ClusterLoadAssignment {
    let lb_endpoints: Vec<LbEndpoint> = addrs
        .iter()
        .map(|(ip, port)| lb_endpoint(ip, *port))
        .collect();
    ClusterLoadAssignment {
        cluster_name: name,
        endpoints: if lb_endpoints.is_empty() {
            vec![]
        } else {
            vec![LocalityLbEndpoints {
                lb_endpoints,
                ..Default::default()
            }]
        },
        ..Default::default()
    }
}

/// The single DNS endpoint of an ExternalName cluster.
pub fn dns_assignment(cluster_name: &str, host: &str, port: i32) -> ClusterLoadAssignment {
    let port = u32::try_from(port).unwrap_or_default();
    let mut addrs = BTreeSet::new();
    addrs.insert((host.to_string(), port));
    assignment(cluster_name.to_string(), &addrs)
}

fn lb_endpoint(ip: &str, port: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: ip.to_string(),
                    port_specifier: Some(PortSpecifier::PortValue(port)),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointPort, EndpointSlice};

    #[test]
    fn only_ip_addresses_become_endpoints() {
        let slice = |addresses: &[&str]| {
            Arc::new(SliceRecord::of(EndpointSlice {
                address_type: "FQDN".into(),
                endpoints: vec![SliceEndpoint {
                    addresses: addresses.iter().map(|a| a.to_string()).collect(),
                    ..Default::default()
                }],
                ports: Some(vec![EndpointPort {
                    name: Some("http".into()),
                    port: Some(8080),
                    ..Default::default()
                }]),
                ..Default::default()
            }))
        };
        let slices = [
            slice(&["backend.example.com"]),
            slice(&["10.0.0.1", "fd00::1"]),
        ];
        let addrs: Vec<(String, u32)> =
            ready_addresses(slices.iter(), "http").into_iter().collect();
        assert_eq!(
            addrs,
            vec![
                ("10.0.0.1".to_string(), 8080),
                ("fd00::1".to_string(), 8080)
            ]
        );
    }
}
