//! `contour.heptio.com/v1beta1` IngressRoute, the API of the seed walkthrough.

use k8s_openapi::api::core::v1::LoadBalancerStatus;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::httpproxy::UpstreamValidation;
use crate::schema::is_false;

/// An IngressRoute: a virtual host (when it is a root) with prefix routes,
/// or a set of routes a root delegates to.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "contour.heptio.com",
    version = "v1beta1",
    kind = "IngressRoute",
    plural = "ingressroutes",
    singular = "ingressroute",
    namespaced,
    derive = "PartialEq",
    status = "IngressRouteStatus",
    printcolumn = r#"{"name":"FQDN","type":"string","jsonPath":".spec.virtualhost.fqdn","description":"Fully qualified domain name"}"#,
    printcolumn = r#"{"name":"TLS Secret","type":"string","jsonPath":".spec.virtualhost.tls.secretName","description":"Secret with TLS credentials"}"#,
    printcolumn = r#"{"name":"First route","type":"string","jsonPath":".spec.routes[0].match","description":"First routes defined"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.currentStatus","description":"The current status of the IngressRoute"}"#,
    printcolumn = r#"{"name":"Status Description","type":"string","jsonPath":".status.description","description":"Description of the current status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteSpec {
    /// Makes this IngressRoute a root: the virtual host it serves.
    #[serde(
        default,
        rename = "virtualhost",
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_host: Option<VirtualHost>,
    /// Prefix routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// A TCP proxy for the virtual host.
    #[serde(default, rename = "tcpproxy", skip_serializing_if = "Option::is_none")]
    pub tcp_proxy: Option<TCPProxy>,
}

/// The virtual host of a root IngressRoute.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualHost {
    /// The fully qualified domain name.
    #[schemars(regex(pattern = crate::schema::FQDN))]
    pub fqdn: String,
    /// TLS for the virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TLS>,
}

/// TLS of an IngressRoute virtual host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TLS {
    /// Secret with the certificate and key; `namespace/name` for a delegated one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    /// Minimum TLS version (`1.2` or `1.3`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub minimum_protocol_version: String,
    /// Pass TLS through to the backend (requires tcpproxy).
    #[serde(default, skip_serializing_if = "is_false")]
    pub passthrough: bool,
}

/// A prefix route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The path prefix (must start with `/`).
    #[schemars(regex(pattern = r"^/.*$"))]
    pub r#match: String,
    /// Upstream services, weighted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Delegate this prefix to another IngressRoute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<Delegate>,
    /// Allow websocket upgrades.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_websockets: bool,
    /// Serve over plain HTTP even when the virtual host has TLS.
    #[serde(default, skip_serializing_if = "is_false")]
    pub permit_insecure: bool,
    /// Replace the matched prefix before forwarding.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix_rewrite: String,
    /// Timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_policy: Option<TimeoutPolicy>,
    /// Retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
}

/// Timeouts of an IngressRoute route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TimeoutPolicy {
    /// Time for the whole request; `infinity` disables it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION_OR_INFINITY))]
    pub request: String,
}

/// Retries of an IngressRoute route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Number of retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub count: Option<i64>,
    /// Timeout of each try.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION_OR_INFINITY))]
    pub per_try_timeout: String,
}

/// A TCP proxy of an IngressRoute.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TCPProxy {
    /// Upstream services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Delegate the TCP proxy to another IngressRoute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<Delegate>,
}

/// An upstream Kubernetes Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Name of the Service.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Port of the Service.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Relative weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<u32>,
    /// Active HTTP health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Load balancing strategy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub strategy: String,
    /// TLS validation of the upstream.
    #[serde(
        default,
        rename = "validation",
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_validation: Option<UpstreamValidation>,
}

/// An active HTTP health check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Path requested.
    pub path: String,
    /// Host header sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Interval between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub interval_seconds: Option<i64>,
    /// Timeout of one check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub timeout_seconds: Option<i64>,
    /// Failures before an endpoint is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold_count: Option<u32>,
    /// Successes before an endpoint is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold_count: Option<u32>,
}

/// A delegation to another IngressRoute.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Delegate {
    /// Name of the IngressRoute.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Its namespace; the delegator's when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// Status of an IngressRoute.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteStatus {
    /// `valid`, `invalid` or `orphaned`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_status: String,
    /// A human-readable description of the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Addresses of the Envoy service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerStatus>,
}
