//! NACKs reach the objects they came from: while Envoy refuses a version of a
//! resource type, every routing object whose spec names a string that the
//! refusal quotes (a regex, a host, a service) gets an `EnvoyRejected` error
//! in its status. The next ACK of that type clears it. Envoy keeps serving
//! its last accepted version meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::cache::{Cache, Key};
use crate::dag::{ObjectKind, Statuses};
use crate::metrics::{Metrics, short_type};
use crate::xds::Event;
use crate::xds::server::Observer;

/// Strings shorter than this are too common to trace an error by.
const MIN_TRACE_LEN: usize = 4;

/// Forwards ACK/NACK events to the event loop, besides counting them.
pub struct TracingObserver {
    /// Counts and logs.
    pub metrics: Arc<Metrics>,
    /// Where events go.
    pub events: mpsc::UnboundedSender<Event>,
}

impl Observer for TracingObserver {
    fn event(&self, node: &str, event: &Event) {
        self.metrics.event(node, event);
        let _ = self.events.send(event.clone());
    }
    fn pushed(&self, type_url: &str, resources: usize, latency: Option<Duration>) {
        self.metrics.pushed(type_url, resources, latency);
    }
    fn stream(&self, delta: i64) {
        self.metrics.stream(delta);
    }
}

/// Refusals in force, by type URL.
pub type Rejections = BTreeMap<String, String>;

/// Applies an event; returns whether the rejections changed.
pub fn record(rejections: &mut Rejections, event: &Event) -> bool {
    match event {
        Event::Nack {
            type_url, message, ..
        } => {
            rejections
                .insert(type_url.clone(), message.clone())
                .as_deref()
                != Some(message)
        }
        Event::Ack { type_url, .. } => rejections.remove(type_url).is_some(),
    }
}

fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) if s.len() >= MIN_TRACE_LEN => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

/// The statuses with an `EnvoyRejected` error on every object a refusal
/// can be traced to. Pure.
pub fn annotate(statuses: &Statuses, cache: &Cache, rejections: &Rejections) -> Statuses {
    let mut out = statuses.clone();
    if rejections.is_empty() {
        return out;
    }
    for (r, status) in out.iter_mut() {
        let key = Key::new(r.namespace.clone(), r.name.clone());
        let spec = match r.kind {
            ObjectKind::HTTPProxy => cache
                .httpproxies
                .get(&key)
                .and_then(|p| serde_json::to_value(&p.spec).ok()),
            ObjectKind::IngressRoute => cache
                .ingressroutes
                .get(&key)
                .and_then(|p| serde_json::to_value(&p.spec).ok()),
        };
        let Some(spec) = spec else {
            continue;
        };
        let mut named = Vec::new();
        strings(&spec, &mut named);
        for (type_url, message) in rejections {
            if named.iter().any(|s| message.contains(s)) {
                status.error(
                    "EnvoyRejected",
                    "RejectedByEnvoy",
                    format!(
                        "Envoy rejected the {} update this object is part of; it keeps serving the previous configuration: {message}",
                        short_type(type_url)
                    ),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Object;
    use crate::dag::{ObjectRef, ObjectStatus};

    #[test]
    fn a_refusal_is_traced_to_the_object_that_names_it() -> Result<(), Box<dyn std::error::Error>> {
        let mut cache = Cache::default();
        for (name, regex) in [("bad", "/(a+)+{9999}"), ("good", "/fine")] {
            let proxy: contour_crds::HTTPProxy = serde_json::from_value(serde_json::json!({
                "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"virtualhost": {"fqdn": format!("{name}.example.com")},
                         "routes": [{"conditions": [{"regex": regex}], "services": [{"name": "s", "port": 80}]}]}
            }))?;
            cache.insert(Object::HTTPProxy(proxy));
        }
        let mut statuses = Statuses::new();
        for name in ["bad", "good"] {
            statuses.insert(
                ObjectRef {
                    kind: ObjectKind::HTTPProxy,
                    namespace: "default".into(),
                    name: name.into(),
                },
                ObjectStatus::valid("Valid HTTPProxy", 1),
            );
        }
        let mut rejections = Rejections::new();
        let nack = Event::Nack {
            type_url: crate::xds::type_url::ROUTE.into(),
            version: "v".into(),
            message: "regex '/(a+)+{9999}' RE2 program size of 30000 > max program size".into(),
        };
        assert!(record(&mut rejections, &nack));
        assert!(
            !record(&mut rejections, &nack),
            "the same refusal twice is no change"
        );
        let out = annotate(&statuses, &cache, &rejections);
        let bad = out.values().find(|s| !s.is_valid());
        assert!(bad.is_some_and(|s| s.errors[0].r#type == "EnvoyRejected"));
        assert_eq!(out.values().filter(|s| s.is_valid()).count(), 1);
        let ack = Event::Ack {
            type_url: crate::xds::type_url::ROUTE.into(),
            version: "w".into(),
        };
        assert!(record(&mut rejections, &ack));
        assert_eq!(annotate(&statuses, &cache, &rejections), statuses);
        Ok(())
    }
}
