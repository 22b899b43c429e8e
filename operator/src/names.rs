//! Names and labels of the children, derived from the ContourDeployment.
//!
//! Namespaced children live in the instance's namespace and are prefixed
//! (`contour-<name>`, `envoy-<name>`); cluster-scoped children, and the Roles
//! the instance gets in other namespaces, are `contour:<namespace>:<name>` —
//! `:` appears in neither a namespace nor a (validated) instance name, so two
//! instances never share a name.

use std::collections::BTreeMap;

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "contour-operator";
/// Finalizer that removes cluster-scoped children (and Roles in other namespaces).
pub const FINALIZER: &str = "projectcontour.io/contour-operator";
/// `app.kubernetes.io/managed-by` value.
pub const MANAGED_BY: &str = "contour-operator";
/// Label: the owning instance's name.
pub const OWNER_NAME: &str = "projectcontour.io/owner-name";
/// Label: the owning instance's namespace.
pub const OWNER_NAMESPACE: &str = "projectcontour.io/owner-namespace";
/// Annotation: hash of what we last applied (no-op detection).
pub const APPLIED_HASH: &str = "projectcontour.io/applied-hash";
/// Annotation on a ContourDeployment: any new value rotates the generated
/// certificates once (the CA is kept).
pub const ROTATE_CERTIFICATES: &str = "projectcontour.io/rotate-certificates";
/// Annotation on the certificate Secrets: the rotation value they answer.
pub const ROTATED_FOR: &str = "projectcontour.io/certificates-rotated-for";
/// Longest instance name: `contour-<name>` must be a 63-character DNS label.
pub const MAX_NAME_LEN: usize = 55;

/// Names of one instance's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The instance's namespace.
    pub namespace: String,
    /// The instance's name.
    pub instance: String,
    /// Contour's ServiceAccount, Deployment, Service, ConfigMap, Role, Lease.
    pub contour: String,
    /// Envoy's ServiceAccount, workload, Service, PDB.
    pub envoy: String,
    /// Headless Service exposing Envoy's stats for its ServiceMonitor.
    pub envoy_metrics: String,
    /// Contour's certificate Secret.
    pub contour_cert: String,
    /// Envoy's certificate Secret.
    pub envoy_cert: String,
    /// The CA (certificate and key) the two are signed with; read by the
    /// operator only.
    pub ca: String,
    /// ClusterRole/ClusterRoleBinding, and Roles in watched namespaces.
    pub cluster_scoped: String,
}

impl Names {
    /// The names for instance `name` in `namespace`.
    pub fn new(namespace: &str, name: &str) -> Names {
        Names {
            namespace: namespace.to_string(),
            instance: name.to_string(),
            contour: format!("contour-{name}"),
            envoy: format!("envoy-{name}"),
            envoy_metrics: format!("envoy-{name}-metrics"),
            contour_cert: format!("contourcert-{name}"),
            envoy_cert: format!("envoycert-{name}"),
            ca: format!("contourca-{name}"),
            cluster_scoped: format!("contour:{namespace}:{name}"),
        }
    }

    /// Labels that mark an object as this instance's (ownership).
    pub fn owner_labels(&self) -> BTreeMap<String, String> {
        [
            ("app.kubernetes.io/managed-by", MANAGED_BY),
            (OWNER_NAME, self.instance.as_str()),
            (OWNER_NAMESPACE, self.namespace.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The label selector matching every child of this instance.
    pub fn owner_selector(&self) -> String {
        self.owner_labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Pod selector of a component (`contour` or `envoy`); immutable once applied.
    pub fn selector(&self, component: &str) -> BTreeMap<String, String> {
        [
            ("app.kubernetes.io/name", component),
            ("app.kubernetes.io/instance", self.instance.as_str()),
            ("app.kubernetes.io/managed-by", MANAGED_BY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Whether `labels` mark an object as this instance's.
    pub fn owns(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let Some(labels) = labels else {
            return false;
        };
        self.owner_labels()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_scoped_names_cannot_collide_across_namespaces() {
        // "a-b"/"c" and "a"/"b-c" would both be "contour-a-b-c" with dashes.
        assert_ne!(
            Names::new("a-b", "c").cluster_scoped,
            Names::new("a", "b-c").cluster_scoped
        );
    }

    #[test]
    fn ownership_needs_every_label() {
        let n = Names::new("ns", "x");
        let mut labels = n.owner_labels();
        assert!(n.owns(Some(&labels)));
        labels.insert(OWNER_NAMESPACE.into(), "other".into());
        assert!(!n.owns(Some(&labels)));
        assert!(!n.owns(None));
    }
}
