//! The ConfigMap with `runtimeSettings` as `contour.yaml`.
//!
//! Our `contour serve` has no `--config-path` yet: the settings it
//! understands (`enableExternalNameService`, `envoy.http.port`,
//! `envoy.https.port`, `httpproxy.rootNamespaces`,
//! `httpproxy.fallbackCertificate`, `ingress.classNames`) become flags; the
//! file is mounted at `/config/contour.yaml` for the day it reads it.

use k8s_openapi::api::core::v1::ConfigMap;

use super::{BuildError, meta};
use crate::validate::Validated;

/// The ConfigMap.
pub fn build(v: &Validated) -> Result<ConfigMap, BuildError> {
    let text = serde_yaml::to_string(&v.runtime_settings)?;
    Ok(ConfigMap {
        metadata: meta(v, &v.names.contour, "contour"),
        data: Some([("contour.yaml".to_string(), text)].into()),
        ..Default::default()
    })
}
