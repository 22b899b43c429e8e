//! Service (`v1`).

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

use super::common::{ANNOTATION_VALUES, Few, Num, PORTS, SERVICES, Text, ns, obj, opt};

#[derive(Debug, Clone, Arbitrary)]
pub struct Service {
    ns: u8,
    name: Text,
    external: Option<Text>,
    ports: Few<Port>,
    annotations: Few<(u8, Text)>,
}

/// Name, port, target port, app protocol.
type Port = (Option<Text>, Num, Option<Num>, Option<Text>);

impl Service {
    pub(super) fn json(&self) -> Value {
        const KEYS: &[&str] = &[
            "projectcontour.io/upstream-protocol.tls",
            "projectcontour.io/upstream-protocol.h2c",
            "projectcontour.io/upstream-protocol.h2",
            "projectcontour.io/max-connections",
            "projectcontour.io/max-pending-requests",
            "projectcontour.io/max-requests",
            "projectcontour.io/max-retries",
            "projectcontour.io/per-host-max-connections",
        ];
        let mut annotations = Map::new();
        for (k, v) in &self.annotations.0 {
            annotations.insert(
                KEYS[*k as usize % KEYS.len()].to_string(),
                json!(v.of(ANNOTATION_VALUES)),
            );
        }
        let ports = self.ports.map(|(name, port, target, app)| {
            obj(vec![
                (
                    "name",
                    opt(name, |t| json!(t.of(&["http", "https", "h2", ""]))),
                ),
                (
                    "port",
                    json!(port.of(PORTS).clamp(i32::MIN as i64, i32::MAX as i64)),
                ),
                (
                    "targetPort",
                    opt(target, |n| {
                        json!(n.of(&[8080, 80, 0]).clamp(i32::MIN as i64, i32::MAX as i64))
                    }),
                ),
                (
                    "appProtocol",
                    opt(app, |t| {
                        json!(t.of(&[
                            "kubernetes.io/h2c",
                            "kubernetes.io/wss",
                            "http",
                            "https",
                            "h2c",
                            ""
                        ]))
                    }),
                ),
            ])
        });
        let mut spec = obj(vec![("ports", ports)]);
        if let Some(host) = &self.external {
            spec["type"] = json!("ExternalName");
            spec["externalName"] = json!(host.of(&["example.com", "bad name", "", "10.0.0.1"]));
        }
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": self.name.of(SERVICES), "namespace": ns(self.ns), "annotations": annotations},
               "spec": spec})
    }
}
