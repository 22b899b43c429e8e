//! IngressRoute (`contour.heptio.com/v1beta1`).

use arbitrary::Arbitrary;
use serde_json::{Value, json};

use super::common::{
    COUNTS, DURATIONS, FQDNS, Few, LB, Num, PATHS, PORTS, PROXIES, SECRETS, SERVICES, TLS_VERSIONS,
    Text, ns, obj, opt,
};

#[derive(Debug, Clone, Arbitrary)]
pub struct IngressRoute {
    ns: u8,
    name: Text,
    vhost: Option<IrVHost>,
    routes: Few<IrRoute>,
    tcp: Option<IrTcp>,
}

/// Fqdn, then TLS: secret, minimum version, passthrough.
type IrVHost = (Text, Option<(Text, Option<Text>, bool)>);
/// Services, then a delegate (name, namespace index).
type IrTcp = (Few<IrService>, Option<(Text, Option<u8>)>);

#[derive(Debug, Clone, Arbitrary)]
struct IrRoute {
    prefix: Text,
    services: Few<IrService>,
    delegate: Option<(Text, Option<u8>)>,
    websockets: bool,
    insecure: bool,
    rewrite: Option<Text>,
    timeout: Option<Text>,
    retry: Option<(Option<Num>, Option<Text>)>,
}

#[derive(Debug, Clone, Arbitrary)]
struct IrService {
    name: Text,
    port: Num,
    weight: Option<u8>,
    health: Option<(Text, Option<Text>)>,
    strategy: Option<Text>,
    validation: Option<(Text, Text)>,
}

fn delegate(d: &Option<(Text, Option<u8>)>) -> Value {
    opt(d, |(n, s)| {
        obj(vec![
            ("name", json!(n.of(PROXIES))),
            ("namespace", opt(s, |s| json!(ns(*s)))),
        ])
    })
}

impl IrService {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("name", json!(self.name.of(SERVICES))),
            ("port", json!(self.port.of(PORTS))),
            ("weight", opt(&self.weight, |w| json!(w))),
            (
                "healthCheck",
                opt(&self.health, |(p, h)| {
                    obj(vec![
                        ("path", json!(p.of(PATHS))),
                        ("host", opt(h, |h| json!(h.of(FQDNS)))),
                    ])
                }),
            ),
            ("strategy", opt(&self.strategy, |t| json!(t.of(LB)))),
            (
                "validation",
                opt(
                    &self.validation,
                    |(ca, subject)| json!({"caSecret": ca.of(SECRETS), "subjectName": subject.of(FQDNS)}),
                ),
            ),
        ])
    }
}

impl IngressRoute {
    pub(super) fn json(&self) -> Value {
        let vhost = opt(&self.vhost, |(fqdn, tls)| {
            obj(vec![
                ("fqdn", json!(fqdn.of(FQDNS))),
                (
                    "tls",
                    opt(tls, |(s, min, pass)| {
                        obj(vec![
                            ("secretName", json!(s.of(SECRETS))),
                            (
                                "minimumProtocolVersion",
                                opt(min, |t| json!(t.of(TLS_VERSIONS))),
                            ),
                            ("passthrough", json!(pass)),
                        ])
                    }),
                ),
            ])
        });
        let routes = self.routes.map(|r| {
            obj(vec![
                ("match", json!(r.prefix.of(PATHS))),
                ("services", r.services.map(IrService::json)),
                ("delegate", delegate(&r.delegate)),
                ("enableWebsockets", json!(r.websockets)),
                ("permitInsecure", json!(r.insecure)),
                ("prefixRewrite", opt(&r.rewrite, |t| json!(t.of(PATHS)))),
                (
                    "timeoutPolicy",
                    opt(&r.timeout, |t| json!({"request": t.of(DURATIONS)})),
                ),
                (
                    "retryPolicy",
                    opt(&r.retry, |(c, p)| {
                        obj(vec![
                            ("count", opt(c, |n| json!(n.of(COUNTS)))),
                            ("perTryTimeout", opt(p, |t| json!(t.of(DURATIONS)))),
                        ])
                    }),
                ),
            ])
        });
        let tcp = opt(&self.tcp, |(services, d)| {
            obj(vec![
                ("services", services.map(IrService::json)),
                ("delegate", delegate(d)),
            ])
        });
        json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
               "metadata": {"name": self.name.of(PROXIES), "namespace": ns(self.ns), "generation": 1},
               "spec": obj(vec![("virtualhost", vhost), ("routes", routes), ("tcpproxy", tcp)])})
    }
}
