//! Ingress (`networking.k8s.io/v1`).

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

use super::common::{
    ANNOTATION_VALUES, CLASSES, DURATIONS, FQDNS, Few, NAMESPACES, Num, PATHS, PORTS, SECRETS,
    SERVICES, TLS_VERSIONS, Text, ns, obj, opt,
};

#[derive(Debug, Clone, Arbitrary)]
pub struct Ingress {
    ns: u8,
    second: bool,
    class_annotation: Option<(bool, Text)>,
    class_field: Option<Text>,
    annotations: Few<(u8, Text)>,
    default_backend: Option<Backend>,
    tls: Few<(Few<Text>, Option<Text>)>,
    rules: Few<Rule>,
}

#[derive(Debug, Clone, Arbitrary)]
struct Backend {
    service: Text,
    port: Result<Num, Text>,
}

impl Backend {
    pub(super) fn json(&self) -> Value {
        let port = match &self.port {
            Ok(n) => json!({"number": n.of(PORTS)}),
            Err(t) => json!({"name": t.of(&["http", "https", "h2", ""])}),
        };
        json!({"service": {"name": self.service.of(SERVICES), "port": port}})
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct Rule {
    host: Option<Text>,
    paths: Few<(Option<Text>, Text, Backend)>,
}

impl Ingress {
    pub(super) fn json(&self) -> Value {
        const KEYS: &[&str] = &[
            "ingress.kubernetes.io/force-ssl-redirect",
            "kubernetes.io/ingress.allow-http",
            "projectcontour.io/websocket-routes",
            "projectcontour.io/response-timeout",
            "projectcontour.io/request-timeout",
            "projectcontour.io/retry-on",
            "projectcontour.io/num-retries",
            "projectcontour.io/per-try-timeout",
            "projectcontour.io/tls-minimum-protocol-version",
            "projectcontour.io/tls-maximum-protocol-version",
            "projectcontour.io/tls-cert-namespace",
        ];
        let mut annotations = Map::new();
        for (k, v) in &self.annotations.0 {
            let key = KEYS[*k as usize % KEYS.len()];
            let pool: Vec<&str> = ANNOTATION_VALUES
                .iter()
                .chain(DURATIONS)
                .chain(TLS_VERSIONS)
                .chain(NAMESPACES)
                .chain(PATHS)
                .copied()
                .collect();
            annotations.insert(key.to_string(), json!(v.of(&pool)));
        }
        if let Some((contour, c)) = &self.class_annotation {
            let key = if *contour {
                "projectcontour.io/ingress.class"
            } else {
                "kubernetes.io/ingress.class"
            };
            annotations.insert(key.to_string(), json!(c.of(CLASSES)));
        }
        let path_types = ["Prefix", "Exact", "ImplementationSpecific", "bogus"];
        let spec = obj(vec![
            (
                "ingressClassName",
                opt(&self.class_field, |t| json!(t.of(CLASSES))),
            ),
            ("defaultBackend", opt(&self.default_backend, Backend::json)),
            (
                "tls",
                self.tls.map(|(hosts, s)| {
                    obj(vec![
                        ("hosts", hosts.map(|h| json!(h.of(FQDNS)))),
                        ("secretName", opt(s, |s| json!(s.of(SECRETS)))),
                    ])
                }),
            ),
            (
                "rules",
                self.rules.map(|r| {
                    obj(vec![
                        ("host", opt(&r.host, |h| json!(h.of(FQDNS)))),
                        (
                            "http",
                            json!({"paths": r.paths.map(|(p, t, b)| obj(vec![
                                ("path", opt(p, |p| json!(p.of(PATHS)))),
                                ("pathType", json!(t.of(&path_types))),
                                ("backend", b.json()),
                            ]))}),
                        ),
                    ])
                }),
            ),
        ]);
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": if self.second { "ing2" } else { "ing" }, "namespace": ns(self.ns),
                            "annotations": annotations},
               "spec": spec})
    }
}
