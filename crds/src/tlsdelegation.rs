//! `projectcontour.io/v1` TLSCertificateDelegation.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::DetailedCondition;

/// Allows HTTPProxies and IngressRoutes in other namespaces to use TLS
/// secrets of this namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "projectcontour.io",
    version = "v1",
    kind = "TLSCertificateDelegation",
    plural = "tlscertificatedelegations",
    singular = "tlscertificatedelegation",
    shortname = "tlscerts",
    namespaced,
    derive = "PartialEq",
    status = "TLSCertificateDelegationStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct TLSCertificateDelegationSpec {
    /// The delegated secrets.
    pub delegations: Vec<CertificateDelegation>,
}

/// One delegated secret and the namespaces that may use it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDelegation {
    /// Name of a Secret in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Namespaces allowed to use it; `*` allows all.
    pub target_namespaces: Vec<String>,
}

/// Status of a TLSCertificateDelegation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TLSCertificateDelegationStatus {
    /// Detailed conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<DetailedCondition>,
}
