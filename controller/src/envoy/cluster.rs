//! Clusters: one per distinct upstream (Service port + options).

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster as EnvoyCluster,
    cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig},
};
use sha1::{Digest, Sha1};

use crate::dag::{Cluster, Dag, RouteAction};

/// Upstream's cluster name: `namespace/service/port/<10 hex of sha1 over the
/// non-default options>`, shortened to 60 characters when longer.
pub fn cluster_name(c: &Cluster) -> String {
    let mut buf = c.lb_policy.clone();
    buf.push_str(&c.protocol);
    let digest = Sha1::digest(buf.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    hashname(60, &[&c.namespace, &c.service, &c.port.to_string(), &hash])
}

/// Joins parts with `/`; when the result is `limit` or longer, truncates the
/// parts from the last one, marking each with a short sha256 hash.
pub fn hashname(limit: usize, parts: &[&str]) -> String {
    use sha2::Sha256;
    let joined = parts.join("/");
    if joined.len() < limit {
        return joined;
    }
    let hash: String = Sha256::digest(joined.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let short = &hash[..6];
    let mut parts: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    let each = limit / parts.len();
    for n in (0..parts.len()).rev() {
        parts[n] = truncate(each, &parts[n], short);
        let r = parts.join("/");
        if r.len() < limit {
            return r;
        }
    }
    hash[..limit.min(hash.len())].to_string()
}

fn truncate(limit: usize, s: &str, suffix: &str) -> String {
    if limit >= s.len() {
        return s.to_string();
    }
    if limit <= suffix.len() {
        return suffix[..limit].to_string();
    }
    let keep = limit - suffix.len() - 1;
    let head: String = s.chars().take(keep).collect();
    format!("{head}-{suffix}")
}

/// Every cluster the routes of the DAG point at, by name.
pub fn dag_clusters(dag: &Dag) -> BTreeMap<String, Arc<Cluster>> {
    let mut out = BTreeMap::new();
    for l in dag.listeners.values() {
        let vhosts = l
            .virtual_hosts
            .values()
            .chain(l.secure_virtual_hosts.values().map(|s| &s.virtual_host));
        for route in vhosts.flat_map(|v| &v.routes) {
            if let RouteAction::Forward(clusters) = &route.action {
                for wc in clusters {
                    out.entry(cluster_name(&wc.cluster))
                        .or_insert_with(|| Arc::clone(&wc.cluster));
                }
            }
        }
    }
    out
}

/// The Envoy clusters, sorted by name.
pub fn clusters(dag: &Dag) -> Vec<EnvoyCluster> {
    dag_clusters(dag)
        .into_iter()
        .map(|(name, c)| envoy_cluster(name, &c))
        .collect()
}

fn envoy_cluster(name: String, c: &Cluster) -> EnvoyCluster {
    let alt_stat_name = format!("{}_{}_{}", c.namespace, c.service, c.port);
    let mut out = EnvoyCluster {
        name,
        alt_stat_name,
        connect_timeout: Some(super::duration(std::time::Duration::from_secs(2))),
        ..Default::default()
    };
    match &c.external_name {
        Some(host) => {
            out.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns as i32));
            out.load_assignment = Some(super::endpoint::dns_assignment(&out.name, host, c.port));
        }
        None => {
            out.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
            out.eds_cluster_config = Some(EdsClusterConfig {
                eds_config: Some(super::ads_config_source()),
                service_name: c.eds_name(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_cluster_is_named_as_upstream_names_it() {
        let c = Cluster {
            namespace: "default".into(),
            service: "kuard".into(),
            port: 80,
            ..Default::default()
        };
        assert_eq!(cluster_name(&c), "default/kuard/80/da39a3ee5e");
    }

    #[test]
    fn long_names_are_shortened_below_the_limit() {
        let c = Cluster {
            namespace: "a-very-long-namespace-name-for-testing".into(),
            service: "an-equally-long-service-name-for-testing".into(),
            port: 8080,
            ..Default::default()
        };
        let name = cluster_name(&c);
        assert!(name.len() < 60, "{name}");
        assert_eq!(name, cluster_name(&c), "deterministic");
    }
}
