//! Envoy's PodDisruptionBudget, when asked for.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::meta;
use crate::validate::Validated;

/// The PDB, if `envoy.podDisruptionBudget` is set.
pub fn build(v: &Validated) -> Option<PodDisruptionBudget> {
    let s = v.envoy.pdb.as_ref()?;
    Some(PodDisruptionBudget {
        metadata: meta(v, &v.names.envoy, "envoy"),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: s.min_available.clone(),
            max_unavailable: s.max_unavailable.clone(),
            selector: Some(LabelSelector {
                match_labels: Some(v.names.selector("envoy")),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}
