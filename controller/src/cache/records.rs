//! What routing reads of Services and EndpointSlices, kept instead of the
//! API objects: the cache holds one per Service and slice of the cluster,
//! and a `k8s-openapi` Service is 824 bytes before its first string (an
//! EndpointSlice 432, plus 352 per endpoint). A change to anything else in
//! them (selectors, cluster IPs, topology) compares equal and rebuilds
//! nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Annotations of a Service that routing reads start with this
/// (`upstream-protocol.*`, the circuit breaker thresholds).
const ANNOTATION_PREFIX: &str = "projectcontour.io/";

/// A Service as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceRecord {
    /// For an `ExternalName` Service, its `spec.externalName` (empty when
    /// unset); `None` for every other type.
    pub external_name: Option<String>,
    /// `spec.ports`.
    pub ports: Vec<ServicePortRecord>,
    /// The `projectcontour.io/` annotations.
    pub annotations: BTreeMap<String, String>,
}

/// One Service port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServicePortRecord {
    /// `name`.
    pub name: Option<String>,
    /// `port`.
    pub port: i32,
    /// `protocol` (`TCP` when unset, as the API server defaults it).
    pub protocol: Option<String>,
    /// `appProtocol`.
    pub app_protocol: Option<String>,
}

impl ServiceRecord {
    /// The parts of `svc` routing reads (its strings are moved, not copied).
    pub fn of(svc: Service) -> Self {
        let spec = svc.spec.unwrap_or_default();
        let external_name = (spec.type_.as_deref() == Some("ExternalName"))
            .then(|| spec.external_name.unwrap_or_default());
        let ports = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| ServicePortRecord {
                name: p.name,
                port: p.port,
                protocol: p.protocol,
                app_protocol: p.app_protocol,
            })
            .collect();
        let annotations = svc
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX))
            .collect();
        Self {
            external_name,
            ports,
            annotations,
        }
    }
}

/// An EndpointSlice as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SliceRecord {
    /// The Service it belongs to (its `kubernetes.io/service-name` label).
    pub service: Option<String>,
    /// Its ports: name (empty when unnamed) and number.
    pub ports: Vec<(String, Option<i32>)>,
    /// The addresses of its endpoints that may take traffic, in order: only
    /// an explicit `ready: false` excludes an endpoint (as upstream), and
    /// only IP addresses are kept (Envoy refuses a static endpoint named by
    /// a DNS name, as in an `FQDN` slice, and with it the whole update).
    pub addresses: Vec<String>,
}

impl SliceRecord {
    /// The parts of `slice` routing reads.
    pub fn of(slice: EndpointSlice) -> Self {
        let service = slice
            .metadata
            .labels
            .and_then(|mut l| l.remove(SERVICE_NAME_LABEL));
        let ports = slice
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.name.unwrap_or_default(), p.port))
            .collect();
        let addresses = slice
            .endpoints
            .into_iter()
            .filter(|ep| ep.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .flat_map(|ep| ep.addresses)
            .filter(|a| a.parse::<IpAddr>().is_ok())
            .collect();
        Self {
            service,
            ports,
            addresses,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn a_service_keeps_type_ports_and_contour_annotations_only() -> TestResult {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "ns", "annotations": {
                "projectcontour.io/upstream-protocol.h2c": "80",
                "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"type": "ExternalName", "externalName": "example.com",
                     "selector": {"app": "x"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "h2c"}]}
        }))?;
        let r = ServiceRecord::of(svc);
        assert_eq!(r.external_name.as_deref(), Some("example.com"));
        assert_eq!(
            r.ports,
            [ServicePortRecord {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                app_protocol: Some("h2c".into()),
            }]
        );
        assert_eq!(
            r.annotations.keys().collect::<Vec<_>>(),
            ["projectcontour.io/upstream-protocol.h2c"]
        );
        let cluster_ip: Service = serde_json::from_value(json!({
            "metadata": {"name": "s"}, "spec": {"externalName": "ignored"}
        }))?;
        assert_eq!(ServiceRecord::of(cluster_ip).external_name, None);
        Ok(())
    }

    #[test]
    fn a_slice_keeps_ready_ip_addresses_ports_and_its_service() -> TestResult {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "s-1", "labels": {"kubernetes.io/service-name": "s"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}, {"port": 9090}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"]},
                {"addresses": ["backend.example.com"]}
            ]
        }))?;
        let r = SliceRecord::of(slice);
        assert_eq!(r.service.as_deref(), Some("s"));
        assert_eq!(
            r.ports,
            [
                ("http".to_string(), Some(8080)),
                (String::new(), Some(9090))
            ]
        );
        assert_eq!(r.addresses, ["10.0.0.1", "10.0.0.3"]);
        Ok(())
    }
}
