//! The settled plan a valid spec becomes: every default filled in, every
//! value checked. The build step reads only these types.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements, Toleration,
    Volume, VolumeMount,
};
use serde_json::Value;

use contour_crds::contourdeployment::PodDisruptionBudgetSettings;

use crate::names::Names;

/// Images used when the spec names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Image with our `contour` binary.
    pub contour: String,
    /// Envoy's image.
    pub envoy: String,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            contour: format!("ghcr.io/contour-rs/contour:v{}", env!("CARGO_PKG_VERSION")),
            envoy: "docker.io/envoyproxy/envoy:v1.40.0".into(),
        }
    }
}

/// The Envoy workload kind and its rollout settings.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvoyWorkload {
    /// One Envoy per node.
    DaemonSet(Option<DaemonSetUpdateStrategy>),
    /// A Deployment of `replicas` Envoys.
    Deployment(i32, Option<DeploymentStrategy>),
}

/// How the Envoy Service is published.
#[derive(Debug, Clone, PartialEq)]
pub struct Publishing {
    /// `LoadBalancer`, `NodePort` or `ClusterIP`.
    pub service_type: &'static str,
    /// `Local`/`Cluster`; `None` for ClusterIP.
    pub external_traffic_policy: Option<String>,
    /// IP family policy.
    pub ip_family_policy: Option<String>,
    /// Service annotations.
    pub annotations: BTreeMap<String, String>,
    /// Fixed node ports (http, https).
    pub node_ports: (Option<i32>, Option<i32>),
}

/// Where the xDS certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertPlan {
    /// Generated and rotated by the operator.
    Generate {
        /// Lifetime of new certificates.
        lifetime: Duration,
        /// Renew this long before expiry.
        rotate_before: Duration,
        /// The `projectcontour.io/rotate-certificates` value: a value the
        /// Secrets do not answer yet rotates them.
        rotation: Option<String>,
    },
    /// The user's Secrets (contour, envoy).
    Existing {
        /// Contour's Secret.
        contour: String,
        /// Envoy's Secret.
        envoy: String,
    },
}

/// Contour's Deployment, settled.
#[derive(Debug, Clone, PartialEq)]
pub struct ContourPlan {
    pub replicas: i32,
    /// A HorizontalPodAutoscaler scales the Deployment: `replicas` is not
    /// applied (the operator never fights the autoscaler).
    pub autoscaled: bool,
    pub strategy: Option<DeploymentStrategy>,
    pub image: String,
    pub resources: Option<ResourceRequirements>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Option<Affinity>,
    /// `--log-level` (an EnvFilter directive).
    pub log_level: String,
    pub pod_annotations: BTreeMap<String, String>,
    pub watch_namespaces: Vec<String>,
    pub ingress_class_name: Option<String>,
    pub root_namespaces: Vec<String>,
    pub image_pull_secrets: Vec<LocalObjectReference>,
    pub enable_external_name_service: bool,
    pub fallback_certificate: Option<(String, String)>,
    /// `routeLayout` when it is not `auto` (serve's default): `single` or
    /// `scoped`.
    pub route_layout: Option<&'static str>,
}

/// Envoy's workload, settled.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvoyPlan {
    pub workload: EnvoyWorkload,
    /// A HorizontalPodAutoscaler scales Envoy's Deployment: its replicas
    /// are not applied.
    pub autoscaled: bool,
    pub image: String,
    pub host_network: bool,
    /// Host ports of the http and https listeners.
    pub host_ports: Option<(i32, i32)>,
    /// Envoy's HTTP listener port (runtimeSettings.envoy.http.port, default 8080).
    pub http_port: i32,
    /// Envoy's HTTPS listener port (default 8443).
    pub https_port: i32,
    pub publishing: Publishing,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub extra_volumes: Vec<Volume>,
    pub extra_volume_mounts: Vec<VolumeMount>,
    pub pod_annotations: BTreeMap<String, String>,
    pub resources: Option<ResourceRequirements>,
    pub log_level: String,
    pub base_id: Option<i32>,
    pub overload_max_heap: Option<u64>,
    pub overload_max_connections: Option<u64>,
    pub drain_seconds: i64,
    pub extra_args: Vec<String>,
    pub extra_env: Vec<EnvVar>,
    pub pdb: Option<PodDisruptionBudgetSettings>,
    pub image_pull_secrets: Vec<LocalObjectReference>,
    pub priority_class_name: Option<String>,
    pub security_context: Option<PodSecurityContext>,
}

/// ServiceMonitors, settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringPlan {
    /// Create them (asked for, or `Auto`, and the CRD exists).
    pub create: bool,
    /// What the status says: `Created`, `Disabled` or `CRDAbsent`.
    pub state: &'static str,
    pub interval: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A spec that builds.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub names: Names,
    pub uid: String,
    pub generation: Option<i64>,
    /// The user's `resourceLabels`.
    pub resource_labels: BTreeMap<String, String>,
    pub contour: ContourPlan,
    pub envoy: EnvoyPlan,
    pub certificates: CertPlan,
    pub monitoring: MonitoringPlan,
    /// Rendered into the ConfigMap as `contour.yaml`.
    pub runtime_settings: Value,
    /// Set `runtimeSettings` keys this build does not apply (dotted paths).
    pub ignored_settings: Vec<String>,
}
