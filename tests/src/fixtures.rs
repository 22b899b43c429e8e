//! Golden fixtures: `tests/fixtures/<case>/input.yaml` (Kubernetes objects,
//! optional `config.yaml` for the builder: `rootNamespaces`,
//! `ingressClassName`, `enableExternalNameService`, `fallbackCertificate`,
//! `routeLayout`) → the expected Envoy resources and statuses, one YAML
//! file per kind (`scopedroutes.yaml` only where there are scopes).
//! `UPDATE_GOLDEN=1` rewrites them.

use std::path::{Path, PathBuf};

use contour::cache::{Cache, Object};
use contour::dag::{self, BuilderConfig, Dag};
use serde_json::{Value, json};

/// Files compared for every case, besides `status.yaml`.
pub const RESOURCE_FILES: [&str; 5] = ["listeners", "routes", "clusters", "endpoints", "secrets"];

/// The fixtures directory.
pub fn dir() -> PathBuf {
    crate::tools::repo_root().join("tests/fixtures")
}

/// Every case directory, sorted.
pub fn cases() -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Loads the objects of `input.yaml` into a cache.
pub fn load(case: &Path) -> Result<(Cache, BuilderConfig), String> {
    let text = std::fs::read_to_string(case.join("input.yaml")).map_err(|e| e.to_string())?;
    let mut cache = Cache::default();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        cache.insert(object(value)?);
    }
    let mut config = BuilderConfig::default();
    if let Ok(text) = std::fs::read_to_string(case.join("config.yaml")) {
        let v: Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
        if let Some(ns) = v["rootNamespaces"].as_array() {
            config.root_namespaces = ns
                .iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect();
        }
        if let Some(class) = v["ingressClassName"].as_str() {
            config.ingress_class_name = Some(class.to_string());
        }
        if let Some(enable) = v["enableExternalNameService"].as_bool() {
            config.enable_external_name_service = enable;
        }
        // `fallbackCertificate: {namespace: ..., name: ...}`, as upstream's
        // `tls.fallback-certificate`.
        let fallback = &v["fallbackCertificate"];
        if let (Some(ns), Some(name)) = (fallback["namespace"].as_str(), fallback["name"].as_str())
        {
            config.fallback_certificate = Some((ns.to_string(), name.to_string()));
        }
        match v["routeLayout"].as_str() {
            // `auto` (the default) is `single` at a fixture's size.
            None | Some("auto") => {}
            Some("single") => config.route_layout = dag::RouteLayout::Single,
            Some("scoped") => config.route_layout = dag::RouteLayout::Scoped,
            Some(other) => return Err(format!("routeLayout {other:?}: auto, single or scoped")),
        }
    }
    Ok((cache, config))
}

/// A Kubernetes object from its JSON, by `kind`.
pub fn object(v: Value) -> Result<Object, String> {
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    let e = |e: serde_json::Error| format!("{kind}: {e}");
    Ok(match kind.as_str() {
        "Ingress" => Object::Ingress(serde_json::from_value(v).map_err(e)?),
        "IngressRoute" => Object::IngressRoute(serde_json::from_value(v).map_err(e)?),
        "HTTPProxy" => Object::HTTPProxy(serde_json::from_value(v).map_err(e)?),
        "TLSCertificateDelegation" => Object::Delegation(serde_json::from_value(v).map_err(e)?),
        "Service" => Object::Service(serde_json::from_value(v).map_err(e)?),
        "Secret" => Object::Secret(serde_json::from_value(v).map_err(e)?),
        "EndpointSlice" => Object::EndpointSlice(serde_json::from_value(v).map_err(e)?),
        other => return Err(format!("unsupported kind {other:?} in fixture")),
    })
}

/// Builds and translates a case: `(file stem, YAML text)` for every output file.
pub fn render(cache: &Cache, config: &BuilderConfig) -> Result<Vec<(String, String)>, String> {
    let dag = dag::build(cache, config);
    let resources = contour::envoy::translate(&dag, cache);
    let mut out = Vec::new();
    for (name, items) in resources.to_json().map_err(|e| e.to_string())? {
        if name == "scopedroutes" && items.is_empty() {
            continue;
        }
        out.push((name.to_string(), yaml(&Value::Array(items))?));
    }
    out.push(("status".to_string(), yaml(&status_json(&dag))?));
    Ok(out)
}

/// The statuses of a DAG as stable JSON.
pub fn status_json(dag: &Dag) -> Value {
    Value::Array(
        dag.statuses
            .iter()
            .map(|(r, s)| {
                let problems = |ps: &[dag::status::Problem]| -> Vec<Value> {
                    ps.iter()
                        .map(
                            |p| json!({"type": p.r#type, "reason": p.reason, "message": p.message}),
                        )
                        .collect()
                };
                let mut v = json!({
                    "kind": format!("{:?}", r.kind),
                    "namespace": r.namespace,
                    "name": r.name,
                    "currentStatus": s.current.as_str(),
                    "description": s.description,
                });
                if !s.errors.is_empty() {
                    v["errors"] = Value::Array(problems(&s.errors));
                }
                if !s.warnings.is_empty() {
                    v["warnings"] = Value::Array(problems(&s.warnings));
                }
                v
            })
            .collect(),
    )
}

fn yaml(v: &Value) -> Result<String, String> {
    serde_yaml::to_string(v).map_err(|e| e.to_string())
}
