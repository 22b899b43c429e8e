//! `projectcontour.io/v1alpha1` ContourDeployment: one Contour installation.
//!
//! The field names are a superset of upstream's, so upstream manifests apply.
//! The operator reconciles it into a Contour Deployment, an Envoy DaemonSet
//! (or Deployment) and everything around them, and writes its status.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of one Contour installation.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "projectcontour.io",
    version = "v1alpha1",
    kind = "ContourDeployment",
    plural = "contourdeployments",
    singular = "contourdeployment",
    namespaced,
    derive = "PartialEq",
    status = "ContourDeploymentStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.ready"}"#,
    printcolumn = r#"{"name":"Available","type":"string","jsonPath":".status.conditions[?(@.type==\"Available\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ContourDeploymentSpec {
    /// Settings of the Contour control plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contour: Option<ContourSettings>,
    /// Settings of the Envoy data plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy: Option<EnvoySettings>,
    /// Contour's configuration, rendered into its ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::contourdeployment::free_form_object")]
    pub runtime_settings: Option<serde_json::Value>,
    /// Labels added to every object the operator creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_labels: BTreeMap<String, String>,
    /// The xDS mTLS certificates (ours; upstream has no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<CertificateSettings>,
    /// Prometheus ServiceMonitors (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSettings>,
}

/// How the xDS certificates are made.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSettings {
    /// Lifetime of generated certificates, e.g. `365d` or `8760h` (default `365d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(d|h|m|s))+$"))]
    pub lifetime: Option<String>,
    /// Renew generated certificates this long before they expire (default `30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(d|h|m|s))+$"))]
    pub rotate_before: Option<String>,
    /// Use this existing `kubernetes.io/tls` Secret (with `ca.crt`) as Contour's
    /// certificate instead of generating one; requires `envoySecretName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contour_secret_name: Option<String>,
    /// Use this existing Secret as Envoy's certificate; requires `contourSecretName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_secret_name: Option<String>,
}

/// Prometheus ServiceMonitors for Contour and Envoy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSettings {
    /// `Auto` (default: when the ServiceMonitor CRD exists), `On` or `Off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Auto", "On", "Off"]))]
    pub service_monitors: Option<String>,
    /// Scrape interval, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"))]
    pub interval: Option<String>,
    /// Extra labels of the ServiceMonitors (for a Prometheus `serviceMonitorSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Settings of the Contour Deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContourSettings {
    /// Deprecated: use `deployment.replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Node selector and tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_placement: Option<NodePlacement>,
    /// Log level of the Kubernetes client (0-9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 9))]
    pub kubernetes_log_level: Option<u8>,
    /// Log level of Contour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["trace", "debug", "info", "warn", "error", "critical", "off"]))]
    pub log_level: Option<String>,
    /// Compute resources of the contour container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Replicas and rollout strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentSettings>,
    /// Annotations added to the contour pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// How Envoy gets the plain-HTTP routes (not in upstream's API):
    /// `auto` (the default: `single` below 1000 plain hosts, `scoped` from
    /// there on), `single` (upstream's: one route configuration) or
    /// `scoped` (one scoped route configuration per host, over Envoy's
    /// incremental xDS stream: a new route is live in Envoy faster at
    /// scale, at ≈ 10 µs of Envoy CPU per request). Sets `contour serve
    /// --route-layout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["auto", "single", "scoped"]))]
    pub route_layout: Option<String>,
    /// Watch only these namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 42),
        inner(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub watch_namespaces: Vec<String>,
    /// Features (resource kinds) not to watch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::contourdeployment::disabled_features_schema")]
    pub disabled_features: Vec<String>,
    /// Image of the contour container (ours; default: the operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Affinity of the contour pods (ours; default: spread over nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Ingress class(es) to serve, comma separated (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// Namespaces where root HTTPProxies may live (ours; default all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_namespaces: Vec<String>,
    /// Pull secrets of the contour pods (ours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// Replicas and rollout strategy of a Deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSettings {
    /// Number of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Rollout strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
}

/// Rollout strategy of a DaemonSet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetSettings {
    /// Update strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<DaemonSetUpdateStrategy>,
}

/// Settings of the Envoy workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvoySettings {
    /// `DaemonSet` (default) or `Deployment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["DaemonSet", "Deployment"]))]
    pub workload_type: Option<String>,
    /// Deprecated: use `deployment.replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// How Envoy is exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_publishing: Option<NetworkPublishing>,
    /// Node selector and tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_placement: Option<NodePlacement>,
    /// Extra volumes of the Envoy pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<Volume>,
    /// Extra volume mounts of the envoy container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volume_mounts: Vec<VolumeMount>,
    /// Annotations added to the Envoy pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Compute resources of the envoy container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Log level of Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["trace", "debug", "info", "warn", "error", "critical", "off"]))]
    pub log_level: Option<String>,
    /// DaemonSet settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_set: Option<DaemonSetSettings>,
    /// Deployment settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentSettings>,
    /// Envoy's `--base-id`.
    #[serde(default, rename = "baseID", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub base_id: Option<i32>,
    /// Overload manager heap limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overload_max_heap_size: Option<u64>,
    /// Overload manager downstream connection limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overload_max_downstream_connections: Option<u64>,
    /// Image of the envoy container (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Run Envoy in the node's network namespace (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Expose Envoy's listeners on these node ports (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ports: Option<HostPorts>,
    /// How long Envoy drains connections on shutdown, e.g. `60s` (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"))]
    pub drain_timeout: Option<String>,
    /// Extra arguments of the envoy container (ours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// Extra environment of the envoy container (ours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_env: Vec<EnvVar>,
    /// A PodDisruptionBudget for the Envoy pods (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSettings>,
    /// Pull secrets of the Envoy pods (ours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Priority class of the Envoy pods (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Pod security context of the Envoy pods (ours; default: non-root 65534).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
}

/// Node ports Envoy's listeners are exposed on (`hostPort`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostPorts {
    /// Host port of the HTTP listener (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub http: Option<i32>,
    /// Host port of the HTTPS listener (default 443).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub https: Option<i32>,
}

/// A PodDisruptionBudget; give one of the two.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSettings {
    /// Pods that must stay available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// Node ports of a `NodePortService`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePorts {
    /// Node port of the HTTP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub http: Option<i32>,
    /// Node port of the HTTPS port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub https: Option<i32>,
}

/// How the Envoy Service is published.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPublishing {
    /// `LoadBalancerService` (default), `NodePortService` or `ClusterIPService`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["LoadBalancerService", "NodePortService", "ClusterIPService"]))]
    pub r#type: Option<String>,
    /// `Local` (default) or `Cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Local", "Cluster"]))]
    pub external_traffic_policy: Option<String>,
    /// `SingleStack`, `PreferDualStack` or `RequireDualStack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["SingleStack", "PreferDualStack", "RequireDualStack"]))]
    pub ip_family_policy: Option<String>,
    /// Annotations of the Envoy Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,
    /// Fixed node ports for `NodePortService` (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ports: Option<NodePorts>,
}

/// Node selector and tolerations of a workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePlacement {
    /// Node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

/// Observed state of a ContourDeployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContourDeploymentStatus {
    /// The `.metadata.generation` this status was written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions `Available`, `Progressing` and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Ready pods of both workloads, e.g. `contour 2/2, envoy 3/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// The Contour Deployment's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contour: Option<WorkloadStatus>,
    /// The Envoy DaemonSet's or Deployment's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy: Option<WorkloadStatus>,
    /// When the first of the xDS certificates expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expiry: Option<Time>,
    /// `Created`, `Disabled` or `CRDAbsent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitors: Option<String>,
}

/// Pod counts of a workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Pods wanted.
    pub desired: i32,
    /// Pods ready.
    pub ready: i32,
    /// Pods running the current template.
    pub updated: i32,
}

/// Schema of a free-form object whose unknown fields the API server keeps.
pub fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// `disabledFeatures`: resource kinds Contour can be told not to watch.
pub fn disabled_features_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 42,
        "items": {
            "type": "string",
            "enum": ["grpcroutes", "tlsroutes", "extensionservices", "backendtlspolicies"]
        }
    })
}
