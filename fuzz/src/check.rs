//! Invariants of a translation that hold for any input: what Envoy would
//! need to accept the resources as a whole (every reference resolves, names
//! are unique) and what the xDS side relies on (everything encodes).
//!
//! Each check panics with a description, which libFuzzer reports as a crash.

use std::collections::{BTreeMap, BTreeSet};

use contour::envoy::Resources;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::ClusterSpecifier as TcpSpecifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use envoy_types::pb::envoy::config::core::v3::transport_socket;
use prost::Message;

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for n in names {
        assert!(seen.insert(n), "duplicate {what} name {n:?}");
    }
    seen
}

/// Checks every invariant of one translation.
pub fn resources(r: &Resources) {
    let listeners = unique("listener", r.listeners.iter().map(|l| l.name.as_str()));
    let _ = listeners;
    let routes = unique(
        "route configuration",
        r.routes.iter().map(|c| c.name.as_str()),
    );
    let clusters = unique("cluster", r.clusters.iter().map(|c| c.name.as_str()));
    let endpoints = unique(
        "load assignment",
        r.endpoints.iter().map(|e| e.cluster_name.as_str()),
    );
    let secrets = unique("secret", r.secrets.iter().map(|s| s.name.as_str()));

    // Clusters: an EDS cluster's assignment exists; DNS ones carry their own.
    for c in &r.clusters {
        match c.cluster_discovery_type {
            Some(ClusterDiscoveryType::Type(t)) if t == DiscoveryType::Eds as i32 => {
                let service = c
                    .eds_cluster_config
                    .as_ref()
                    .map(|e| e.service_name.as_str())
                    .unwrap_or(c.name.as_str());
                assert!(
                    endpoints.contains(service),
                    "EDS cluster {} names assignment {service:?}, which is not served",
                    c.name
                );
            }
            _ => assert!(
                c.load_assignment.is_some(),
                "non-EDS cluster {} has no load assignment",
                c.name
            ),
        }
    }

    // Routes: every cluster named exists; weighted clusters are usable.
    for rc in &r.routes {
        let mut domains = BTreeSet::new();
        let mut vhosts = BTreeSet::new();
        for vh in &rc.virtual_hosts {
            assert!(
                vhosts.insert(vh.name.as_str()),
                "route configuration {} has two virtual hosts {:?}",
                rc.name,
                vh.name
            );
            for d in &vh.domains {
                // Envoy compares domains without case and refuses duplicates.
                assert!(
                    domains.insert(d.to_ascii_lowercase()),
                    "route configuration {} has domain {d:?} twice",
                    rc.name
                );
            }
            for route in &vh.routes {
                let Some(Action::Route(action)) = &route.action else {
                    continue;
                };
                match &action.cluster_specifier {
                    Some(ClusterSpecifier::Cluster(name)) => assert!(
                        clusters.contains(name.as_str()),
                        "route in {} / {} points at missing cluster {name:?}",
                        rc.name,
                        vh.name
                    ),
                    Some(ClusterSpecifier::WeightedClusters(w)) => {
                        assert!(
                            !w.clusters.is_empty(),
                            "route in {} / {} has no weighted clusters",
                            rc.name,
                            vh.name
                        );
                        let mut total: u64 = 0;
                        for c in &w.clusters {
                            assert!(
                                clusters.contains(c.name.as_str()),
                                "route in {} / {} weights missing cluster {:?}",
                                rc.name,
                                vh.name,
                                c.name
                            );
                            total += u64::from(c.weight.as_ref().map(|w| w.value).unwrap_or(0));
                        }
                        assert!(
                            total > 0,
                            "route in {} / {} weighs nothing",
                            rc.name,
                            vh.name
                        );
                    }
                    other => panic!("route action without a cluster: {other:?}"),
                }
                for m in &action.request_mirror_policies {
                    assert!(
                        clusters.contains(m.cluster.as_str()),
                        "mirror to missing cluster {:?}",
                        m.cluster
                    );
                }
            }
        }
    }

    // Listeners: RDS names, TCP proxy clusters and SDS secrets resolve;
    // chain matches are unique within a listener.
    for l in &r.listeners {
        let mut matches = BTreeSet::new();
        for chain in &l.filter_chains {
            let key = chain
                .filter_chain_match
                .as_ref()
                .map(Message::encode_to_vec)
                .unwrap_or_default();
            assert!(
                matches.insert(key),
                "listener {} has two chains with the same match {:?}",
                l.name,
                chain.filter_chain_match
            );
            for f in &chain.filters {
                let Some(ConfigType::TypedConfig(any)) = &f.config_type else {
                    continue;
                };
                if any.type_url.ends_with(".HttpConnectionManager") {
                    let hcm = HttpConnectionManager::decode(any.value.as_slice())
                        .unwrap_or_else(|e| panic!("listener {}: bad HCM: {e}", l.name));
                    if let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier {
                        assert!(
                            routes.contains(rds.route_config_name.as_str()),
                            "listener {} routes by missing configuration {:?}",
                            l.name,
                            rds.route_config_name
                        );
                    }
                } else if any.type_url.ends_with(".TcpProxy") {
                    let tcp = TcpProxy::decode(any.value.as_slice())
                        .unwrap_or_else(|e| panic!("listener {}: bad TcpProxy: {e}", l.name));
                    match &tcp.cluster_specifier {
                        Some(TcpSpecifier::Cluster(c)) => assert!(
                            clusters.contains(c.as_str()),
                            "TCP proxy to missing cluster {c:?}"
                        ),
                        Some(TcpSpecifier::WeightedClusters(w)) => {
                            assert!(!w.clusters.is_empty(), "TCP proxy without clusters");
                            let mut total: u64 = 0;
                            for c in &w.clusters {
                                assert!(
                                    clusters.contains(c.name.as_str()),
                                    "TCP proxy weights missing cluster {:?}",
                                    c.name
                                );
                                total += u64::from(c.weight);
                            }
                            assert!(total > 0, "TCP proxy weighs nothing");
                        }
                        None => panic!("TCP proxy without cluster in {}", l.name),
                    }
                }
            }
            if let Some(ts) = &chain.transport_socket
                && let Some(transport_socket::ConfigType::TypedConfig(any)) = &ts.config_type
                && any.type_url.ends_with(".DownstreamTlsContext")
            {
                let tls = DownstreamTlsContext::decode(any.value.as_slice())
                    .unwrap_or_else(|e| panic!("listener {}: bad TLS context: {e}", l.name));
                for sds in tls
                    .common_tls_context
                    .iter()
                    .flat_map(|c| &c.tls_certificate_sds_secret_configs)
                {
                    assert!(
                        secrets.contains(sds.name.as_str()),
                        "listener {} serves missing secret {:?}",
                        l.name,
                        sds.name
                    );
                }
            }
        }
    }
}

/// The names of a translation's resources by type (for messages).
pub fn summary(r: &Resources) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("listeners", r.listeners.len()),
        ("routes", r.routes.len()),
        ("clusters", r.clusters.len()),
        ("endpoints", r.endpoints.len()),
        ("secrets", r.secrets.len()),
    ])
}
