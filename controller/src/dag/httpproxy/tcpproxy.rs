//! `spec.tcpproxy` of a root HTTPProxy: services, or an include of another
//! (non-root) proxy's `tcpproxy`, followed as upstream follows it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use contour_crds::HTTPProxy;

use super::super::WeightedCluster;
use super::super::builder::BuilderConfig;
use super::super::source::Source;
use super::super::status::ObjectStatus;
use super::services::{service_cluster, weight};
use super::{VALID, name_of};
use crate::cache::Key;

/// What following a `tcpproxy` gave.
pub(super) enum Outcome {
    /// Forward to these clusters.
    Clusters(Vec<WeightedCluster>),
    /// The end of the chain has no `tcpproxy`: nothing is served over TLS
    /// (upstream accepts this silently).
    Nothing,
    /// An error was recorded, on this proxy or on an included one.
    Failed,
}

/// The state shared while following includes.
pub(super) struct Walk<'a> {
    pub cache: &'a dyn Source,
    pub config: &'a BuilderConfig,
    pub statuses: &'a mut BTreeMap<Key, ObjectStatus>,
    pub reached: &'a mut BTreeSet<Key>,
}

impl Walk<'_> {
    /// Follows the `tcpproxy` of `proxy` (`key`), recording errors on
    /// `status`, the status of that proxy; `visited` is the chain so far.
    pub(super) fn tcp_proxy(
        &mut self,
        key: &Key,
        proxy: &HTTPProxy,
        status: &mut ObjectStatus,
        visited: &mut Vec<Key>,
    ) -> Outcome {
        let Some(tcp) = &proxy.spec.tcp_proxy else {
            return Outcome::Nothing;
        };
        visited.push(key.clone());
        // The singular `include` wins over the deprecated plural.
        let include = tcp.include.as_ref().or(tcp.includes_deprecated.as_ref());
        if !tcp.services.is_empty() && include.is_some() {
            status.error(
                "TCPProxyError",
                "NoServicesAndInclude",
                "cannot specify services and include in the same httpproxy",
            );
            return Outcome::Failed;
        }
        if !tcp.services.is_empty() {
            let mut clusters = Vec::new();
            for s in &tcp.services {
                match service_cluster(self.cache, self.config, &key.namespace, s, "Spec.TCPProxy") {
                    Ok(mut cluster) => {
                        cluster.sni = cluster.external_name.clone().unwrap_or_default();
                        clusters.push(WeightedCluster {
                            cluster: Arc::new(cluster),
                            weight: weight(s),
                            ..Default::default()
                        });
                    }
                    Err((r#type, reason, message)) => {
                        let r#type = if reason == "ServiceUnresolvedReference" {
                            "TCPProxyError"
                        } else {
                            r#type
                        };
                        status.error(r#type, reason, message);
                        return Outcome::Failed;
                    }
                }
            }
            return Outcome::Clusters(clusters);
        }
        let Some(include) = include else {
            status.error(
                "TCPProxyError",
                "NothingDefined",
                "either services or inclusion must be specified",
            );
            return Outcome::Failed;
        };
        let namespace = if include.namespace.is_empty() {
            key.namespace.clone()
        } else {
            include.namespace.clone()
        };
        let target = Key::new(namespace, include.name.clone());
        let Some(child) = self.cache.httpproxy(&target).map(Arc::clone) else {
            status.error(
                "TCPProxyIncludeError",
                "IncludeNotFound",
                format!("include {} not found", name_of(&target)),
            );
            return Outcome::Failed;
        };
        if child.spec.virtual_host.is_some() {
            status.error(
                "TCPProxyIncludeError",
                "RootIncludesRoot",
                format!(
                    "root httpproxy cannot include another root httpproxy ({})",
                    name_of(&target)
                ),
            );
            return Outcome::Failed;
        }
        // The target is part of a chain now, whatever happens next.
        self.reached.insert(target.clone());
        if visited.contains(&target) {
            let path: Vec<String> = visited.iter().chain([&target]).map(name_of).collect();
            status.error(
                "TCPProxyIncludeError",
                "IncludeCreatesCycle",
                format!("include creates a cycle: {}", path.join(" -> ")),
            );
            return Outcome::Failed;
        }
        let mut child_status = self.statuses.remove(&target).unwrap_or_else(|| {
            ObjectStatus::valid(VALID, child.metadata.generation.unwrap_or_default())
        });
        let outcome = self.tcp_proxy(&target, &child, &mut child_status, visited);
        self.statuses.insert(target, child_status);
        outcome
    }
}
