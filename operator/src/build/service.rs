//! Services: Contour's (ClusterIP: xDS 8001, metrics 8000 `http-metrics`),
//! Envoy's (published as the spec says: 80 and 443 to Envoy's listeners),
//! and a headless one with Envoy's stats port for its ServiceMonitor.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta;
use crate::validate::{CONTOUR_HTTP_PORT, ENVOY_STATS_PORT, Validated, XDS_PORT};

fn port(name: &str, port: i32, target: i32, node_port: Option<i32>) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(target)),
        protocol: Some("TCP".into()),
        node_port,
        ..Default::default()
    }
}

/// Contour's Service.
pub fn contour(v: &Validated) -> Service {
    Service {
        metadata: meta(v, &v.names.contour, "contour"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(v.names.selector("contour")),
            ports: Some(vec![
                port("xds", XDS_PORT, XDS_PORT, None),
                port("http-metrics", CONTOUR_HTTP_PORT, CONTOUR_HTTP_PORT, None),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Envoy's Service.
pub fn envoy(v: &Validated) -> Service {
    let e = &v.envoy;
    let p = &e.publishing;
    let mut metadata = meta(v, &v.names.envoy, "envoy");
    if !p.annotations.is_empty() {
        metadata.annotations = Some(p.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(p.service_type.into()),
            external_traffic_policy: p.external_traffic_policy.clone(),
            ip_family_policy: p.ip_family_policy.clone(),
            selector: Some(v.names.selector("envoy")),
            ports: Some(vec![
                port("http", 80, e.http_port, p.node_ports.0),
                port("https", 443, e.https_port, p.node_ports.1),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Headless Service exposing Envoy's stats port to Prometheus only.
pub fn envoy_metrics(v: &Validated) -> Service {
    Service {
        metadata: meta(v, &v.names.envoy_metrics, "envoy"),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(v.names.selector("envoy")),
            ports: Some(vec![port(
                "http-metrics",
                ENVOY_STATS_PORT,
                ENVOY_STATS_PORT,
                None,
            )]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
