//! Step 4 (pure, no client): every child object of one instance, from a
//! [`Validated`] spec and the certificates. One module per child kind.
//!
//! Namespaced children in the instance's namespace carry an owner reference
//! (the garbage collector removes them with the instance); cluster-scoped
//! children and Roles in watched namespaces cannot, and are removed by the
//! finalizer. All carry [`Names::owner_labels`]: the apply step never touches
//! an object without them.

mod config_map;
mod contour_deployment;
mod envoy_workload;
mod pdb;
mod rbac;
pub(crate) mod secret;
mod service;
mod service_account;
mod service_monitor;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::ApiResource;
use serde_json::Value;

use crate::certs::Generated;

use crate::validate::Validated;

pub use service_monitor::service_monitor_resource;

/// Errors building the children.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A child did not serialise.
    #[error("serialising {kind} {name}: {source}")]
    Serialize {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// certgen refused the Secret names.
    #[error(transparent)]
    Secrets(#[from] contour::certgen::CertgenError),
    /// `runtimeSettings` did not render as YAML.
    #[error("rendering runtimeSettings: {0}")]
    RuntimeSettings(#[from] serde_yaml::Error),
}

/// The Envoy workload object.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvoyWorkloadObject {
    /// One Envoy per node.
    DaemonSet(Box<DaemonSet>),
    /// A Deployment.
    Deployment(Box<Deployment>),
}

/// Every child of an instance. The apply step destructures it field by
/// field, so a new field cannot be forgotten there.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// Contour's and Envoy's ServiceAccounts.
    pub service_accounts: Vec<ServiceAccount>,
    /// What Contour may read cluster-wide (absent with `watchNamespaces`).
    pub cluster_role: Option<ClusterRole>,
    /// Binds it to Contour's ServiceAccount.
    pub cluster_role_binding: Option<ClusterRoleBinding>,
    /// The Lease Role in the instance's namespace, then one per watched namespace.
    pub roles: Vec<Role>,
    /// Their bindings.
    pub role_bindings: Vec<RoleBinding>,
    /// `runtimeSettings` as `contour.yaml`.
    pub config_map: ConfigMap,
    /// The generated certificate Secrets (none when the user's are used).
    pub secrets: Vec<Secret>,
    /// Contour's xDS and metrics Service.
    pub contour_service: Service,
    /// `contour serve`.
    pub contour_deployment: Deployment,
    /// Envoy's Service.
    pub envoy_service: Service,
    /// Envoy's DaemonSet or Deployment.
    pub envoy_workload: EnvoyWorkloadObject,
    /// Envoy's PodDisruptionBudget.
    pub envoy_pdb: Option<PodDisruptionBudget>,
    /// Headless Service with Envoy's stats port, for its ServiceMonitor.
    pub envoy_metrics_service: Option<Service>,
    /// ServiceMonitors (`monitoring.coreos.com/v1`), as JSON.
    pub service_monitors: Vec<Value>,
}

/// One child, untyped, as the apply and prune steps handle it.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    /// Its API resource.
    pub resource: ApiResource,
    /// Its namespace (`None`: cluster-scoped).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The object to apply.
    pub object: Value,
}

impl Child {
    fn typed<K>(object: &K) -> Result<Child, BuildError>
    where
        K: kube::Resource<DynamicType = ()> + serde::Serialize,
    {
        let meta = object.meta();
        let name = meta.name.clone().unwrap_or_default();
        Ok(Child {
            resource: ApiResource::erase::<K>(&()),
            namespace: meta.namespace.clone(),
            object: serde_json::to_value(object).map_err(|source| BuildError::Serialize {
                kind: K::kind(&()).to_string(),
                name: name.clone(),
                source,
            })?,
            name,
        })
    }

    /// `Kind namespace/name` for messages.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.resource.kind, self.name),
            None => format!("{} {}", self.resource.kind, self.name),
        }
    }
}

impl Resources {
    /// The children in apply order: identities and rights first, then
    /// configuration and certificates, then Contour (Service, Deployment),
    /// then Envoy (Service, workload, PDB), then monitoring.
    pub fn children(&self) -> Result<Vec<Child>, BuildError> {
        let Resources {
            service_accounts,
            cluster_role,
            cluster_role_binding,
            roles,
            role_bindings,
            config_map,
            secrets,
            contour_service,
            contour_deployment,
            envoy_service,
            envoy_workload,
            envoy_pdb,
            envoy_metrics_service,
            service_monitors,
        } = self;
        let mut out = Vec::new();
        for sa in service_accounts {
            out.push(Child::typed(sa)?);
        }
        if let Some(c) = cluster_role {
            out.push(Child::typed(c)?);
        }
        if let Some(c) = cluster_role_binding {
            out.push(Child::typed(c)?);
        }
        for r in roles {
            out.push(Child::typed(r)?);
        }
        for r in role_bindings {
            out.push(Child::typed(r)?);
        }
        out.push(Child::typed(config_map)?);
        for s in secrets {
            out.push(Child::typed(s)?);
        }
        out.push(Child::typed(contour_service)?);
        out.push(Child::typed(contour_deployment)?);
        out.push(Child::typed(envoy_service)?);
        out.push(match envoy_workload {
            EnvoyWorkloadObject::DaemonSet(d) => Child::typed(d.as_ref())?,
            EnvoyWorkloadObject::Deployment(d) => Child::typed(d.as_ref())?,
        });
        if let Some(p) = envoy_pdb {
            out.push(Child::typed(p)?);
        }
        if let Some(s) = envoy_metrics_service {
            out.push(Child::typed(s)?);
        }
        for m in service_monitors {
            out.push(Child {
                resource: service_monitor_resource(),
                namespace: m["metadata"]["namespace"].as_str().map(String::from),
                name: m["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                object: m.clone(),
            });
        }
        Ok(out)
    }
}

/// Every kind the operator may create, for pruning: the resource and
/// whether its objects can live outside the instance's namespace.
pub fn managed_kinds() -> Vec<(ApiResource, Scope)> {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    vec![
        (ApiResource::erase::<ServiceAccount>(&()), Scope::Own),
        (ApiResource::erase::<ClusterRole>(&()), Scope::Cluster),
        (
            ApiResource::erase::<ClusterRoleBinding>(&()),
            Scope::Cluster,
        ),
        (ApiResource::erase::<Role>(&()), Scope::AnyNamespace),
        (ApiResource::erase::<RoleBinding>(&()), Scope::AnyNamespace),
        (ApiResource::erase::<ConfigMap>(&()), Scope::Own),
        (ApiResource::erase::<Secret>(&()), Scope::Own),
        (ApiResource::erase::<Service>(&()), Scope::Own),
        (ApiResource::erase::<Deployment>(&()), Scope::Own),
        (ApiResource::erase::<DaemonSet>(&()), Scope::Own),
        (ApiResource::erase::<PodDisruptionBudget>(&()), Scope::Own),
        (service_monitor_resource(), Scope::Own),
    ]
}

/// Where a managed kind's objects live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// In the instance's namespace (owner references).
    Own,
    /// In any namespace (Roles in watched namespaces; finalizer).
    AnyNamespace,
    /// Cluster-scoped (finalizer).
    Cluster,
}

/// Builds every child of `v`. `certs` are the generated certificates, `None`
/// when the user's Secrets are used.
pub fn build(v: &Validated, certs: Option<&Generated>) -> Result<Resources, BuildError> {
    let (cluster_role, cluster_role_binding, roles, role_bindings) = rbac::build(v);
    let monitors = v.monitoring.create;
    Ok(Resources {
        service_accounts: service_account::build(v),
        cluster_role,
        cluster_role_binding,
        roles,
        role_bindings,
        config_map: config_map::build(v)?,
        secrets: match certs {
            Some(c) => secret::build(v, c)?,
            None => Vec::new(),
        },
        contour_service: service::contour(v),
        contour_deployment: contour_deployment::build(v),
        envoy_service: service::envoy(v),
        envoy_workload: envoy_workload::build(v),
        envoy_pdb: pdb::build(v),
        envoy_metrics_service: monitors.then(|| service::envoy_metrics(v)),
        service_monitors: if monitors {
            service_monitor::build(v)
        } else {
            Vec::new()
        },
    })
}

/// Labels of a child of `component` (`contour` or `envoy`).
pub(crate) fn labels(v: &Validated, component: &str) -> BTreeMap<String, String> {
    let mut l = v.resource_labels.clone();
    l.extend(v.names.owner_labels());
    l.extend(v.names.selector(component));
    l
}

/// Metadata of a child in the instance's namespace, owned by the instance.
pub(crate) fn meta(v: &Validated, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(v.names.namespace.clone()),
        labels: Some(labels(v, component)),
        owner_references: Some(vec![OwnerReference {
            api_version: "projectcontour.io/v1alpha1".into(),
            kind: "ContourDeployment".into(),
            name: v.names.instance.clone(),
            uid: v.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..Default::default()
    }
}

/// Metadata of a child the garbage collector cannot follow (cluster-scoped,
/// or in another namespace): no owner reference; the finalizer removes it.
pub(crate) fn unowned_meta(
    v: &Validated,
    name: &str,
    component: &str,
    namespace: Option<&str>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(String::from),
        labels: Some(labels(v, component)),
        ..Default::default()
    }
}

/// A container that runs as nobody with a read-only root and no privileges.
pub(crate) fn restricted() -> k8s_openapi::api::core::v1::SecurityContext {
    use k8s_openapi::api::core::v1::{Capabilities, SecurityContext};
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65534),
        run_as_group: Some(65534),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Spread pods of `component` over nodes (preferred, not required).
pub(crate) fn spread(v: &Validated, component: &str) -> k8s_openapi::api::core::v1::Affinity {
    use k8s_openapi::api::core::v1::{
        Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(v.names.selector(component)),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An env var from the pod's own metadata.
pub(crate) fn field_env(name: &str, path: &str) -> k8s_openapi::api::core::v1::EnvVar {
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A volume mount.
pub(crate) fn mount(
    name: &str,
    path: &str,
    read_only: bool,
) -> k8s_openapi::api::core::v1::VolumeMount {
    k8s_openapi::api::core::v1::VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// Non-empty map or `None`.
pub(crate) fn non_empty<K, V>(m: &BTreeMap<K, V>) -> Option<BTreeMap<K, V>>
where
    K: Clone + Ord,
    V: Clone,
{
    (!m.is_empty()).then(|| m.clone())
}
