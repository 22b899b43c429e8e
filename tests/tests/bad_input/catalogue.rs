//! The catalogue: malformed and hostile objects of every kind Contour
//! reads, each with the outcome it must have. Hosts are
//! `<entry>.<namespace>.example.com`; every entry's objects are its own.

use std::net::SocketAddr;

use contour_tests::pki::Ca;
use serde_json::{Value, json};

use super::check::*;

/// What the catalogue is built against.
pub struct Ctx {
    /// The namespace of most entries.
    pub m: String,
    /// A second namespace: other tenants' Secrets, cross-namespace claims.
    pub o: String,
    /// Envoy's HTTPS port.
    pub https: u16,
    /// Signs the serving certificates.
    pub ca: Ca,
    /// The backend every valid route goes to (Service `steady` in both namespaces).
    pub steady: SocketAddr,
}

pub type Built = Result<Vec<Entry>, Box<dyn std::error::Error>>;

impl Ctx {
    pub fn host(&self, entry: &str) -> String {
        format!("{entry}.{}.example.com", self.m)
    }
    pub fn m(&self, v: Value) -> (String, Value) {
        (self.m.clone(), v)
    }
    pub fn o(&self, v: Value) -> (String, Value) {
        (self.o.clone(), v)
    }
}

pub fn service(name: &str, port: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"ports": [port]}})
}

pub fn slice(
    name: &str,
    service: &str,
    address_type: &str,
    ports: Value,
    endpoints: Value,
) -> Value {
    let mut labels = json!({});
    if !service.is_empty() {
        labels["kubernetes.io/service-name"] = json!(service);
    }
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "labels": labels},
           "addressType": address_type, "ports": ports, "endpoints": endpoints})
}

pub fn with_route(fqdn: &str, route: Value) -> Value {
    json!({"virtualhost": {"fqdn": fqdn}, "routes": [route]})
}

pub fn to_steady() -> Value {
    json!([{"name": "steady", "port": 80}])
}

/// Every entry.
pub fn all(c: &Ctx) -> Built {
    let mut out = super::cat_proxy::httpproxy(c)?;
    out.extend(super::cat_routes::httpproxy_routes(c)?);
    out.extend(super::cat_tls::tls(c)?);
    out.extend(super::cat_others::ingressroutes(c)?);
    out.extend(super::cat_others::ingresses(c)?);
    out.extend(super::cat_others::services_and_slices(c)?);
    Ok(out)
}
