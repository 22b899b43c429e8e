//! Fuzz-side model of the objects the DAG builder reads, derived with
//! `arbitrary`, and their mapping to the real API types (through the same
//! JSON the API server would hand the controller).
//!
//! Every string is either picked from a small pool of interesting values
//! (names that resolve, valid and invalid durations, paths, regexes, ...)
//! or raw fuzz text, so inputs both reach deep into the builder and probe
//! its validation.

mod common;
mod delegation;
mod endpoints;
mod httpproxy;
mod httpproxy_route;
mod ingress;
mod ingressroute;
mod secret;
mod service;

pub use common::{Few, NAMESPACES, Num, Text};
pub use delegation::Delegation;
pub use endpoints::Slice;
pub use httpproxy::Proxy;
pub use ingress::Ingress;
pub use ingressroute::IngressRoute;
pub use secret::{CA, CERT, CRL, KEY, Secret, base64};
pub use service::Service;

use arbitrary::Arbitrary;
use common::{CLASSES, PROXIES, SECRETS, SERVICES, ns};
use contour::cache::{Key, Kind, Object};
use contour::dag::{AccessLog, AccessLogFormat, BuilderConfig, RouteLayout};
use serde_json::Value;

/// Builder settings.
#[derive(Debug, Clone, Arbitrary)]
pub struct Config {
    /// The fallback certificate (namespace, name).
    pub fallback: Option<(u8, Text)>,
    /// Roots only in `default` and `team-a`.
    pub restricted: bool,
    /// `--ingress-class-name`.
    pub class: Option<Text>,
    /// `--enable-external-name-service`.
    pub external_names: bool,
    /// Access logs (none, text, JSON).
    pub http_log: Option<bool>,
    /// Access logs (none, text, JSON).
    pub https_log: Option<bool>,
    /// `--route-layout`: single, scoped, or auto with a threshold of 1–4
    /// hosts (so generated sets cross it both ways).
    pub layout: u8,
}

impl Config {
    /// The builder configuration.
    pub fn build(&self) -> BuilderConfig {
        let log = |json: &Option<bool>| {
            json.map(|j| AccessLog {
                path: "/dev/stdout".into(),
                format: if j {
                    AccessLogFormat::Json
                } else {
                    AccessLogFormat::Envoy
                },
            })
        };
        BuilderConfig {
            fallback_certificate: self
                .fallback
                .as_ref()
                .map(|(n, s)| (ns(*n).to_string(), s.of(SECRETS))),
            root_namespaces: if self.restricted {
                vec!["default".into(), "team-a".into()]
            } else {
                vec![]
            },
            ingress_class_name: self.class.as_ref().map(|c| c.of(CLASSES)),
            enable_external_name_service: self.external_names,
            http_access_log: log(&self.http_log),
            https_access_log: log(&self.https_log),
            route_layout: match self.layout % 6 {
                0 => RouteLayout::Single,
                1 => RouteLayout::Scoped,
                n => RouteLayout::Auto {
                    scoped_from: usize::from(n) - 1,
                },
            },
            ..BuilderConfig::default()
        }
    }
}

/// One object of any kind the builder reads.
#[derive(Debug, Clone, Arbitrary)]
pub enum Obj {
    // Boxed: a proxy is several times larger than the other kinds.
    Proxy(Box<Proxy>),
    IngressRoute(IngressRoute),
    Ingress(Ingress),
    Service(Service),
    Secret(Secret),
    Slice(Slice),
    Delegation(Delegation),
}

impl Obj {
    /// The object as the API server would serve it.
    pub fn json(&self) -> Value {
        match self {
            Obj::Proxy(p) => p.json(),
            Obj::IngressRoute(r) => r.json(),
            Obj::Ingress(i) => i.json(),
            Obj::Service(s) => s.json(),
            Obj::Secret(s) => s.json(),
            Obj::Slice(s) => s.json(),
            Obj::Delegation(d) => d.json(),
        }
    }

    /// The real object (`None` when the JSON does not deserialize, as the
    /// API server would have refused it).
    pub fn object(&self) -> Option<Object> {
        object(self.json())
    }
}

/// The real object of some JSON, by its `kind`.
pub fn object(v: Value) -> Option<Object> {
    let kind = v.get("kind")?.as_str()?.to_string();
    Some(match kind.as_str() {
        "HTTPProxy" => Object::HTTPProxy(serde_json::from_value(v).ok()?),
        "IngressRoute" => Object::IngressRoute(serde_json::from_value(v).ok()?),
        "Ingress" => Object::Ingress(serde_json::from_value(v).ok()?),
        "Service" => Object::Service(serde_json::from_value(v).ok()?),
        "Secret" => Object::Secret(serde_json::from_value(v).ok()?),
        "EndpointSlice" => Object::EndpointSlice(serde_json::from_value(v).ok()?),
        "TLSCertificateDelegation" => Object::Delegation(serde_json::from_value(v).ok()?),
        _ => return None,
    })
}

/// A change to the cache.
#[derive(Debug, Clone, Arbitrary)]
pub enum Step {
    /// Insert or replace.
    Put(Obj),
    /// Delete (kind, namespace, name pool index).
    Delete(u8, u8, u8),
}

impl Step {
    /// The key to delete, if this is a delete.
    pub fn delete_key(&self) -> Option<(Kind, Key)> {
        let Step::Delete(k, n, name) = self else {
            return None;
        };
        let (kind, pool): (Kind, &[&str]) = match k % 7 {
            0 => (Kind::HTTPProxy, PROXIES),
            1 => (Kind::IngressRoute, PROXIES),
            2 => (Kind::Ingress, &["ing", "ing2"]),
            3 => (Kind::Service, SERVICES),
            4 => (Kind::Secret, &["tls", "ca", "bad"]),
            5 => (Kind::EndpointSlice, &["s0-x", "s1-x", "s0-y", "ext-x"]),
            _ => (Kind::Delegation, &["d"]),
        };
        Some((kind, Key::new(ns(*n), pool[*name as usize % pool.len()])))
    }
}

/// Everything one `dag_translate` run does.
#[derive(Debug, Clone, Arbitrary)]
pub struct Scenario {
    pub config: Config,
    pub initial: Few<Obj>,
    pub more: Few<Obj>,
    pub steps: Few<Step>,
}
