//! ServiceMonitors (`monitoring.coreos.com/v1`) for Contour (`:8000/metrics`)
//! and Envoy (`:8002/stats/prometheus`), built only when the CRD exists.

use kube::api::ApiResource;
use serde_json::{Value, json};

use super::{labels, meta};
use crate::validate::Validated;

/// The ServiceMonitor API resource.
pub fn service_monitor_resource() -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "ServiceMonitor".into(),
        plural: "servicemonitors".into(),
    }
}

fn monitor(v: &Validated, name: &str, component: &str, path: &str) -> Value {
    let mut metadata = meta(v, name, component);
    let mut l = labels(v, component);
    l.extend(v.monitoring.labels.clone());
    metadata.labels = Some(l);
    let mut endpoint = json!({"port": "http-metrics", "path": path});
    if let Some(i) = &v.monitoring.interval {
        endpoint["interval"] = json!(i);
    }
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": v.names.selector(component)},
            "namespaceSelector": {"matchNames": [v.names.namespace]},
            "endpoints": [endpoint],
        }
    })
}

/// Contour's ServiceMonitor, then Envoy's.
pub fn build(v: &Validated) -> Vec<Value> {
    vec![
        monitor(v, &v.names.contour, "contour", "/metrics"),
        monitor(v, &v.names.envoy, "envoy", "/stats/prometheus"),
    ]
}
