//! Where the real components live: the version-keyed cache that
//! `tests/tools/install.sh` fills (`make tools`).

use std::path::PathBuf;

use crate::{HarnessError, Result};

const VERSIONS: &str = include_str!("../tools/versions.env");

/// The version of a component as pinned in `tests/tools/versions.env`.
pub fn version(key: &str) -> Option<&'static str> {
    VERSIONS.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The tools cache: `$TOOLS_CACHE`, else `$XDG_CACHE_HOME/contour-rs/tools`,
/// else `~/.cache/contour-rs/tools` (the same rule as install.sh).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TOOLS_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("contour-rs").join("tools")
}

fn tool(env: &str, component: &'static str, dir: &str, key: &str, rel: &str) -> Result<PathBuf> {
    let default = cache_dir()
        .join(format!("{dir}-{}", version(key).unwrap_or("unknown")))
        .join(rel);
    locate(std::env::var_os(env).map(PathBuf::from), default, component)
}

/// The override if given, else the default; an error naming the install
/// command when the file is not there.
fn locate(
    override_path: Option<PathBuf>,
    default: PathBuf,
    component: &'static str,
) -> Result<PathBuf> {
    let path = override_path.unwrap_or(default);
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingTool { component, path })
    }
}

/// The kube-apiserver binary.
pub fn kube_apiserver() -> Result<PathBuf> {
    tool(
        "KUBE_APISERVER_BIN",
        "kube-apiserver",
        "kubernetes",
        "KUBERNETES_VERSION",
        "bin/kube-apiserver",
    )
}

/// The etcd binary.
pub fn etcd() -> Result<PathBuf> {
    tool("ETCD_BIN", "etcd", "etcd", "ETCD_VERSION", "bin/etcd")
}

/// The Envoy binary.
pub fn envoy() -> Result<PathBuf> {
    tool("ENVOY_BIN", "envoy", "envoy", "ENVOY_VERSION", "bin/envoy")
}

/// The helm binary.
pub fn helm() -> Result<PathBuf> {
    tool("HELM_BIN", "helm", "helm", "HELM_VERSION", "bin/helm")
}

/// The ServiceMonitor CRD YAML from the prometheus-operator module.
pub fn servicemonitor_crd() -> Result<PathBuf> {
    tool(
        "SERVICEMONITOR_CRD",
        "ServiceMonitor CRD",
        "prometheus-operator",
        "PROMETHEUS_OPERATOR_VERSION",
        "servicemonitors.yaml",
    )
}

/// The source of upstream Contour at `version` (from the Go module proxy).
pub fn upstream_contour(version: &str) -> Result<PathBuf> {
    let path = cache_dir().join(format!("contour-src-{version}"));
    if path.join("examples/contour/01-crds.yaml").is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingTool {
            component: "upstream Contour source",
            path,
        })
    }
}

/// The repository root (for committed files such as the CRDs).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_component_is_an_error_that_says_how_to_install_it() {
        let err = locate(
            Some("/nonexistent/envoy".into()),
            PathBuf::from("/x"),
            "envoy",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("envoy not found at /nonexistent/envoy"),
            "{err}"
        );
        assert!(err.contains("run `make tools`"), "{err}");
    }

    #[test]
    fn versions_are_read_from_versions_env() {
        assert!(version("ENVOY_VERSION").is_some_and(|v| v.starts_with("1.40")));
        assert!(version("KUBERNETES_VERSION").is_some_and(|v| v.starts_with("v1.")));
        assert_eq!(version("NO_SUCH_TOOL"), None);
    }
}
