//! Status conditions shared by the projectcontour.io types.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A condition with the error and warning details upstream Contour reports
/// (`status.conditions[]` of HTTPProxy and TLSCertificateDelegation).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailedCondition {
    /// Type of the condition, `Valid` for the summary condition.
    #[schemars(length(max = 316))]
    pub r#type: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(extend("enum" = ["True", "False", "Unknown"]))]
    pub status: String,
    /// The `.metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// When the condition last changed status.
    pub last_transition_time: Time,
    /// A CamelCase machine-readable reason.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// A human-readable message.
    #[schemars(length(max = 32768))]
    pub message: String,
    /// The errors behind a `False` condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SubCondition>,
    /// Problems that did not make the object invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SubCondition>,
}

/// One error or warning inside a [`DetailedCondition`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubCondition {
    /// The kind of problem, e.g. `TLSError`.
    #[schemars(length(max = 316))]
    pub r#type: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(extend("enum" = ["True", "False", "Unknown"]))]
    pub status: String,
    /// A CamelCase reason, e.g. `SecretNotValid`.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// A human-readable message.
    #[schemars(length(max = 32768))]
    pub message: String,
}
