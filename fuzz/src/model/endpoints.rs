//! EndpointSlice (`discovery.k8s.io/v1`).

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

use super::common::{ADDRESSES, Few, Num, SERVICES, Text, ns, obj, opt};

#[derive(Debug, Clone, Arbitrary)]
pub struct Slice {
    ns: u8,
    name: Text,
    service: Option<Text>,
    family: Text,
    ports: Few<(Option<Text>, Option<Num>)>,
    endpoints: Few<Endpoint>,
}

/// Addresses, then the ready, serving and terminating conditions.
type Endpoint = (Few<Text>, Option<bool>, Option<bool>, Option<bool>);

impl Slice {
    pub(super) fn json(&self) -> Value {
        let mut labels = Map::new();
        if let Some(s) = &self.service {
            labels.insert("kubernetes.io/service-name".into(), json!(s.of(SERVICES)));
        }
        let ports = self.ports.map(|(n, p)| {
            obj(vec![
                (
                    "name",
                    opt(n, |t| json!(t.of(&["http", "https", "h2", ""]))),
                ),
                (
                    "port",
                    opt(p, |n| {
                        json!(
                            n.of(&[8080, 80, 0, -1])
                                .clamp(i32::MIN as i64, i32::MAX as i64)
                        )
                    }),
                ),
            ])
        });
        let endpoints = self.endpoints.map(|(addrs, ready, serving, terminating)| {
            json!({"addresses": addrs.map(|a| json!(a.of(ADDRESSES))),
            "conditions": obj(vec![
                ("ready", opt(ready, |b| json!(b))),
                ("serving", opt(serving, |b| json!(b))),
                ("terminating", opt(terminating, |b| json!(b))),
            ])})
        });
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": self.name.of(&["s0-x", "s1-x", "s0-y", "ext-x"]), "namespace": ns(self.ns),
                            "labels": labels},
               "addressType": self.family.of(&["IPv4", "IPv6", "FQDN"]),
               "ports": ports, "endpoints": endpoints})
    }
}
