//! The ConfigMap with `runtimeSettings` as given (upstream's
//! ContourConfigurationSpec, YAML), mounted at `/config/contour.yaml`: the
//! record of what was asked. The settings this build applies
//! ([`HONOURED_SETTINGS`]) become `contour serve` flags and Envoy's ports;
//! every other set key is named in the `SettingsHonoured` condition.
//!
//! [`HONOURED_SETTINGS`]: crate::validate::HONOURED_SETTINGS

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
