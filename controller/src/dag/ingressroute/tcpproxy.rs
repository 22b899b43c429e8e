//! `spec.tcpproxy` of a root IngressRoute, as upstream v1.0.1 followed it:
//! services (TLS passthrough, or TLS terminated with the root's
//! certificate), or a `delegate` to another IngressRoute's `tcpproxy`.

use std::sync::Arc;

use contour_crds::IngressRoute;

use super::super::WeightedCluster;
use super::super::common::resolve_service;
use super::{Invalid, Processor, invalid, lb_policy};
use crate::cache::Key;

impl Processor<'_> {
    /// Follows the `tcpproxy` of the root `ir` (`key`): the clusters to
    /// forward to (`None`: nothing to serve) and the root's own result. The
    /// IngressRoutes delegated to are committed here, the deepest first, an
    /// error going to the one that made it. A chain has one link per
    /// object, so it is followed in a loop.
    pub(super) fn tcp_proxy(
        &mut self,
        key: &Key,
        ir: &IngressRoute,
    ) -> (Option<Vec<WeightedCluster>>, Result<(), Invalid>) {
        let cache = self.cache;
        let mut visited: Vec<Key> = Vec::new();
        let mut current_key = key.clone();
        let mut current = ir;
        let (clusters, result) = loop {
            visited.push(current_key.clone());
            let Some(tcp) = &current.spec.tcp_proxy else {
                // Upstream crashed on a delegate without a tcpproxy; serve nothing.
                break (None, Ok(()));
            };
            if !tcp.services.is_empty() && tcp.delegate.is_some() {
                break (
                    None,
                    Err(invalid(
                        "TCPProxyError",
                        "NoServicesAndDelegate",
                        "tcpproxy: cannot specify services and delegate in the same tcpproxy",
                    )),
                );
            }
            if !tcp.services.is_empty() {
                break self.tcp_services(&current_key.namespace, current);
            }
            // An empty tcpproxy is allowed (upstream kept it for backwards
            // compatibility), and so is a delegate that does not exist.
            let Some(delegate) = &tcp.delegate else {
                break (None, Ok(()));
            };
            let namespace = if delegate.namespace.is_empty() {
                current_key.namespace.clone()
            } else {
                delegate.namespace.clone()
            };
            let target = Key::new(namespace, delegate.name.clone());
            let Some(dest) = cache.ingressroutes().get(&target) else {
                break (None, Ok(()));
            };
            if visited.contains(&target) {
                let path: Vec<String> = visited
                    .iter()
                    .chain([&target])
                    .map(|k| format!("{}/{}", k.namespace, k.name))
                    .collect();
                break (
                    None,
                    Err(invalid(
                        "TCPProxyError",
                        "DelegationCycle",
                        format!("tcpproxy creates a delegation cycle: {}", path.join(" -> ")),
                    )),
                );
            }
            current_key = target;
            current = dest;
        };
        // `visited` ends with the object that decided the outcome.
        let mut result = Some(result);
        let mut root_result = Ok(());
        for k in visited.iter().rev() {
            let r = result.take().unwrap_or(Ok(()));
            if k == key {
                root_result = r;
            } else {
                self.commit(k, r);
            }
        }
        (clusters, root_result)
    }

    /// The clusters of a `tcpproxy`'s services (strategy only, no weights,
    /// as upstream v1.0.1).
    fn tcp_services(
        &self,
        namespace: &str,
        ir: &IngressRoute,
    ) -> (Option<Vec<WeightedCluster>>, Result<(), Invalid>) {
        let mut clusters = Vec::new();
        for s in ir.spec.tcp_proxy.iter().flat_map(|t| &t.services) {
            let cluster = (1..=65535).contains(&s.port).then(|| {
                resolve_service(
                    self.cache,
                    self.config,
                    namespace,
                    &s.name,
                    s.port,
                    String::new(),
                )
            });
            match cluster {
                Some(Ok(mut cluster)) => {
                    cluster.lb_policy = lb_policy(&s.strategy);
                    clusters.push(WeightedCluster {
                        cluster: Arc::new(cluster),
                        ..Default::default()
                    });
                }
                _ => {
                    return (
                        None,
                        Err(invalid(
                            "ServiceError",
                            "ServiceUnresolvedReference",
                            format!(
                                "tcpproxy: service {namespace}/{}/{}: not found",
                                s.name, s.port
                            ),
                        )),
                    );
                }
            }
        }
        (Some(clusters), Ok(()))
    }
}
