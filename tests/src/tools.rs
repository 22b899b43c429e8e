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
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
    });
    base.join("contour-rs").join("tools")
}

fn tool(env: &str, component: &'static str, dir: &str, key: &str, rel: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => cache_dir().join(format!("{dir}-{}", version(key).unwrap_or("unknown"))).join(rel),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingTool { component, path })
    }
}

/// The kube-apiserver binary.
pub fn kube_apiserver() -> Result<PathBuf> {
    tool("KUBE_APISERVER_BIN", "kube-apiserver", "kubernetes", "KUBERNETES_VERSION", "bin/kube-apiserver")
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

/// The repository root (for committed files such as the CRDs).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
