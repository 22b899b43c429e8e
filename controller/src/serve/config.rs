//! Upstream Contour's configuration file (`--config-path`, the `contour.yaml`
//! of its ConfigMap), so upstream manifests run unchanged. The settings this
//! build honours are applied; every other key is named in a warning instead
//! of being silently ignored. Flags given on the command line win.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Errors reading the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a valid configuration.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: serde_yaml::Error,
    },
}

/// A Secret by namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NamespacedName {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
}

/// The `tls` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TlsSection {
    /// The certificate served to clients without SNI.
    #[serde(rename = "fallback-certificate", default)]
    pub fallback_certificate: Option<NamespacedName>,
    /// Keys of this section we do not honour yet.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

/// The parts of `contour.yaml` this build reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ConfigFile {
    /// Use the in-cluster service account.
    #[serde(default)]
    pub incluster: Option<bool>,
    /// Path to a kubeconfig.
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Follow ExternalName Services.
    #[serde(rename = "enableExternalNameService", default)]
    pub enable_external_name_service: Option<bool>,
    /// `envoy` or `json`.
    #[serde(rename = "accesslog-format", default)]
    pub accesslog_format: Option<String>,
    /// Keys we do not honour yet.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

impl ConfigFile {
    /// Parses the text of a configuration file (empty is fine).
    pub fn parse(text: &str, path: &str) -> Result<ConfigFile, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        serde_yaml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_string(),
            source,
        })
    }

    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// The keys present but not honoured by this build (dotted paths).
    pub fn ignored_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.other.keys().cloned().collect();
        if let Some(tls) = &self.tls {
            keys.extend(tls.other.keys().map(|k| format!("tls.{k}")));
        }
        keys
    }

    /// The fallback certificate as (namespace, name), when both are set.
    pub fn fallback_certificate(&self) -> Option<(String, String)> {
        let f = self.tls.as_ref()?.fallback_certificate.as_ref()?;
        (!f.name.is_empty() && !f.namespace.is_empty())
            .then(|| (f.namespace.clone(), f.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_example_config_is_read_and_the_rest_named() -> Result<(), ConfigError> {
        let text = r#"
incluster: true
disablePermitInsecure: false
enableExternalNameService: true
tls:
  fallback-certificate:
    name: fallback-secret-name
    namespace: projectcontour
  minimum-protocol-version: "1.2"
accesslog-format: envoy
"#;
        let c = ConfigFile::parse(text, "contour.yaml")?;
        assert_eq!(c.incluster, Some(true));
        assert_eq!(c.enable_external_name_service, Some(true));
        assert_eq!(
            c.fallback_certificate(),
            Some(("projectcontour".into(), "fallback-secret-name".into()))
        );
        assert_eq!(c.accesslog_format.as_deref(), Some("envoy"));
        assert_eq!(
            c.ignored_keys(),
            ["disablePermitInsecure", "tls.minimum-protocol-version"]
        );
        assert_eq!(ConfigFile::parse("", "x")?, ConfigFile::default());
        assert!(ConfigFile::parse("tls: [1, 2]", "x").is_err());
        Ok(())
    }
}
