//! ServiceAccounts: Contour's (talks to the API server) and Envoy's (no token).

use k8s_openapi::api::core::v1::ServiceAccount;

use super::meta;
use crate::validate::Validated;

/// Contour's ServiceAccount, then Envoy's.
pub fn build(v: &Validated) -> Vec<ServiceAccount> {
    vec![
        ServiceAccount {
            metadata: meta(v, &v.names.contour, "contour"),
            ..Default::default()
        },
        ServiceAccount {
            metadata: meta(v, &v.names.envoy, "envoy"),
            // Envoy never calls the API server.
            automount_service_account_token: Some(false),
            ..Default::default()
        },
    ]
}
