//! What `contour serve` may do, and nothing more:
//! - list/watch the objects it routes from (Ingress, IngressRoute, HTTPProxy,
//!   TLSCertificateDelegation, Service, Secret, EndpointSlice) — cluster-wide
//!   through a ClusterRole, or with `watchNamespaces` through one Role per
//!   watched namespace;
//! - update/patch the status of HTTPProxy, IngressRoute and Ingress (same
//!   scope; Ingresses and HTTPProxies get the load balancer address);
//! - create its leader Lease, get/update only that Lease, and read Envoy's
//!   Service (its load balancer address), in its namespace.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::{meta, unowned_meta};
use crate::validate::Validated;

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..Default::default()
    }
}

/// The watch and status rules.
pub fn watch_rules() -> Vec<PolicyRule> {
    vec![
        rule(&[""], &["secrets", "services"], &["list", "watch"]),
        rule(
            &["discovery.k8s.io"],
            &["endpointslices"],
            &["list", "watch"],
        ),
        rule(&["networking.k8s.io"], &["ingresses"], &["list", "watch"]),
        rule(
            &["projectcontour.io"],
            &["httpproxies", "tlscertificatedelegations"],
            &["list", "watch"],
        ),
        rule(
            &["contour.heptio.com"],
            &["ingressroutes"],
            &["list", "watch"],
        ),
        rule(
            &["projectcontour.io"],
            &["httpproxies/status"],
            &["update", "patch"],
        ),
        rule(
            &["contour.heptio.com"],
            &["ingressroutes/status"],
            &["update", "patch"],
        ),
        rule(
            &["networking.k8s.io"],
            &["ingresses/status"],
            &["update", "patch"],
        ),
    ]
}

fn subject(v: &Validated) -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".into(),
        name: v.names.contour.clone(),
        namespace: Some(v.names.namespace.clone()),
        ..Default::default()
    }]
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    }
}

/// ClusterRole and binding (without `watchNamespaces`), then the Roles and
/// RoleBindings: the Lease Role first, then one per watched namespace.
pub fn build(
    v: &Validated,
) -> (
    Option<ClusterRole>,
    Option<ClusterRoleBinding>,
    Vec<Role>,
    Vec<RoleBinding>,
) {
    let n = &v.names;
    let lease_rules = vec![
        rule(&[""], &["services"], &["get", "list", "watch"]),
        rule(&["coordination.k8s.io"], &["leases"], &["create"]),
        PolicyRule {
            resource_names: Some(vec![n.contour.clone()]),
            ..rule(&["coordination.k8s.io"], &["leases"], &["get", "update"])
        },
    ];
    let mut roles = vec![Role {
        metadata: meta(v, &n.contour, "contour"),
        rules: Some(lease_rules),
    }];
    let mut bindings = vec![RoleBinding {
        metadata: meta(v, &n.contour, "contour"),
        role_ref: role_ref("Role", &n.contour),
        subjects: Some(subject(v)),
    }];
    if v.contour.watch_namespaces.is_empty() {
        let cluster_role = ClusterRole {
            metadata: unowned_meta(v, &n.cluster_scoped, "contour", None),
            rules: Some(watch_rules()),
            ..Default::default()
        };
        let binding = ClusterRoleBinding {
            metadata: unowned_meta(v, &n.cluster_scoped, "contour", None),
            role_ref: role_ref("ClusterRole", &n.cluster_scoped),
            subjects: Some(subject(v)),
        };
        return (Some(cluster_role), Some(binding), roles, bindings);
    }
    for ns in &v.contour.watch_namespaces {
        roles.push(Role {
            metadata: unowned_meta(v, &n.cluster_scoped, "contour", Some(ns)),
            rules: Some(watch_rules()),
        });
        bindings.push(RoleBinding {
            metadata: unowned_meta(v, &n.cluster_scoped, "contour", Some(ns)),
            role_ref: role_ref("Role", &n.cluster_scoped),
            subjects: Some(subject(v)),
        });
    }
    (None, None, roles, bindings)
}
