//! NACKs reach the objects they came from: while Envoy refuses a version of a
//! resource type, the routing objects it is traced to get an `EnvoyRejected`
//! error in their status: those whose spec holds a string the refusal quotes
//! (a regex, a host, a service), else those changed since Envoy last accepted
//! that type. The next ACK of that type clears it. Envoy keeps serving its
//! last accepted version meanwhile.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::cache::{Cache, Key};
use crate::dag::{ObjectKind, ObjectRef, Statuses};
use crate::metrics::{Metrics, short_type};
use crate::xds::server::Observer;
use crate::xds::{Event, Snapshot};

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

/// Recent builds remembered to map a NACKed version to the changes in it.
const BUILDS_KEPT: usize = 512;

/// One refusal in force.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejection {
    message: String,
    /// Routing objects changed between the last accepted build of the type
    /// and the refused one.
    suspects: BTreeSet<ObjectRef>,
}

/// Follows which routing objects changed in which build, and which builds
/// Envoy accepted, to say which objects a refusal is about.
#[derive(Debug, Default)]
pub struct Tracker {
    seq: u64,
    changed: BTreeMap<ObjectRef, u64>,
    builds: VecDeque<(String, String, u64)>,
    acked: BTreeMap<String, u64>,
    rejections: BTreeMap<String, Rejection>,
}

impl Tracker {
    /// Whether any refusal is in force.
    pub fn any(&self) -> bool {
        !self.rejections.is_empty()
    }

    /// A routing object changed (its spec or metadata).
    pub fn object_changed(&mut self, r: ObjectRef) {
        self.seq += 1;
        self.changed.insert(r, self.seq);
    }

    /// A routing object is gone.
    pub fn object_removed(&mut self, r: &ObjectRef) {
        self.changed.remove(r);
    }

    /// A snapshot was published; its type versions cover every change so far.
    pub fn built(&mut self, snapshot: &Snapshot) {
        for (t, ts) in &snapshot.types {
            self.builds
                .push_back((t.to_string(), ts.version.clone(), self.seq));
        }
        while self.builds.len() > BUILDS_KEPT {
            self.builds.pop_front();
        }
    }

    fn seq_of(&self, type_url: &str, version: &str) -> Option<u64> {
        self.builds
            .iter()
            .rev()
            .find(|(t, v, _)| t == type_url && v == version)
            .map(|(_, _, s)| *s)
    }

    /// Applies an ACK or NACK; returns whether the refusals changed.
    pub fn event(&mut self, event: &Event) -> bool {
        match event {
            Event::Ack { type_url, version } => {
                if let Some(s) = self.seq_of(type_url, version) {
                    self.acked.insert(type_url.clone(), s);
                }
                self.rejections.remove(type_url).is_some()
            }
            Event::Nack {
                type_url,
                version,
                message,
            } => {
                // Before the first ACK of a type, every object is "new":
                // only the refusal's own words can point at one.
                let suspects = match self.acked.get(type_url) {
                    Some(&from) => {
                        let upto = self.seq_of(type_url, version).unwrap_or(self.seq);
                        self.changed
                            .iter()
                            .filter(|(_, s)| **s > from && **s <= upto)
                            .map(|(r, _)| r.clone())
                            .collect()
                    }
                    None => BTreeSet::new(),
                };
                let new = Rejection {
                    message: message.clone(),
                    suspects,
                };
                self.rejections.insert(type_url.clone(), new.clone()) != Some(new)
            }
        }
    }

    /// The statuses with an `EnvoyRejected` error on every object a refusal
    /// is traced to: the objects whose spec holds a string the refusal
    /// quotes, else the objects changed since Envoy last accepted that type.
    pub fn annotate(&self, statuses: &Statuses, cache: &Cache) -> Statuses {
        let mut out = statuses.clone();
        for (type_url, rejection) in &self.rejections {
            let why = reason(&rejection.message);
            let named: BTreeSet<ObjectRef> = out
                .keys()
                .filter(|r| names_in(r, cache, why))
                .cloned()
                .collect();
            let blamed = if named.is_empty() {
                &rejection.suspects
            } else {
                &named
            };
            for r in blamed {
                if let Some(status) = out.get_mut(r) {
                    status.error(
                        "EnvoyRejected",
                        "RejectedByEnvoy",
                        format!(
                            "Envoy rejected the {} update this object is part of; it keeps serving the previous configuration: {}",
                            short_type(type_url),
                            if why.is_empty() { &rejection.message } else { why }
                        ),
                    );
                }
            }
        }
        out
    }
}

/// What a refusal says about why. Envoy may put a text dump of the refused
/// resource first (`goo.gle/debugonly …`), which quotes every name in it and
/// so would blame every object; the reason follows the dump on a line
/// starting with `: `. Empty when a truncated dump lost it.
fn reason(message: &str) -> &str {
    if !message.contains("goo.gle/debugonly") {
        return message;
    }
    message.rfind("\n: ").map_or("", |i| &message[i + 3..])
}

fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) if s.len() >= MIN_TRACE_LEN => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

/// Whether the object's spec holds a string that `message` quotes.
fn names_in(r: &ObjectRef, cache: &Cache, message: &str) -> bool {
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
        return false;
    };
    let mut named = Vec::new();
    strings(&spec, &mut named);
    named.iter().any(|s| message.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Object;
    use crate::dag::ObjectStatus;
    use crate::xds::TypeSnapshot;
    use crate::xds::type_url::ROUTE;

    fn proxy_ref(name: &str) -> ObjectRef {
        ObjectRef {
            kind: ObjectKind::HTTPProxy,
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn snapshot(version: &str) -> Snapshot {
        let mut s = Snapshot::default();
        s.types.insert(ROUTE, {
            let mut t = TypeSnapshot::default();
            t.version = version.into();
            t
        });
        s
    }

    fn setup() -> Result<(Cache, Statuses), Box<dyn std::error::Error>> {
        let mut cache = Cache::default();
        let mut statuses = Statuses::new();
        for (name, regex) in [("bad", "/(a+)+{9999}"), ("good", "/fine")] {
            let proxy: contour_crds::HTTPProxy = serde_json::from_value(serde_json::json!({
                "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"virtualhost": {"fqdn": format!("{name}.example.com")},
                         "routes": [{"conditions": [{"regex": regex}], "services": [{"name": "s", "port": 80}]}]}
            }))?;
            cache.insert(Object::HTTPProxy(proxy));
            statuses.insert(proxy_ref(name), ObjectStatus::valid("Valid HTTPProxy", 1));
        }
        Ok((cache, statuses))
    }

    fn invalid(out: &Statuses) -> Vec<String> {
        out.iter()
            .filter(|(_, s)| s.errors.iter().any(|e| e.r#type == "EnvoyRejected"))
            .map(|(r, _)| r.name.clone())
            .collect()
    }

    #[test]
    fn a_refusal_quoting_a_spec_string_blames_that_object() -> Result<(), Box<dyn std::error::Error>>
    {
        let (cache, statuses) = setup()?;
        let mut t = Tracker::default();
        t.built(&snapshot("v1"));
        let nack = Event::Nack {
            type_url: ROUTE.into(),
            version: "v1".into(),
            message: "regex '/(a+)+{9999}' RE2 program size of 30000 > max program size".into(),
        };
        assert!(t.event(&nack));
        assert!(!t.event(&nack), "the same refusal twice is no change");
        assert_eq!(invalid(&t.annotate(&statuses, &cache)), ["bad"]);
        assert!(t.event(&Event::Ack {
            type_url: ROUTE.into(),
            version: "v2".into()
        }));
        assert_eq!(t.annotate(&statuses, &cache), statuses);
        Ok(())
    }

    #[test]
    fn the_resource_dump_before_the_reason_blames_nobody() -> Result<(), Box<dyn std::error::Error>>
    {
        let (cache, statuses) = setup()?;
        let mut t = Tracker::default();
        t.built(&snapshot("v1"));
        // Envoy quotes the refused resource, naming both proxies' regexes,
        // before the reason, which names only the bad one.
        let dump = "goo.gle/debugonly  \nname: \"ingress_http\"\nregex: \"/fine\"\nregex: \"/(a+)+{9999}\"\n";
        t.event(&Event::Nack {
            type_url: ROUTE.into(),
            version: "v1".into(),
            message: format!("{dump}: regex '/(a+)+{{9999}}' RE2 program size too large"),
        });
        let out = t.annotate(&statuses, &cache);
        assert_eq!(invalid(&out), ["bad"]);
        let bad = out.get(&proxy_ref("bad")).ok_or("bad")?;
        assert!(
            !bad.errors[0].message.contains("goo.gle"),
            "{:?}",
            bad.errors
        );
        // A dump cut before the reason names nobody.
        t.event(&Event::Nack {
            type_url: ROUTE.into(),
            version: "v1".into(),
            message: format!("{dump}...(truncated)"),
        });
        assert!(invalid(&t.annotate(&statuses, &cache)).is_empty());
        Ok(())
    }

    #[test]
    fn otherwise_the_objects_changed_since_the_last_ack_are_blamed()
    -> Result<(), Box<dyn std::error::Error>> {
        let (cache, statuses) = setup()?;
        let mut t = Tracker::default();
        t.object_changed(proxy_ref("good"));
        t.object_changed(proxy_ref("bad"));
        t.built(&snapshot("v1"));
        let nack = |v: &str| Event::Nack {
            type_url: ROUTE.into(),
            version: v.into(),
            message: "invalid repetition size".into(),
        };
        // Before any ACK nothing can be pinned on anyone.
        t.event(&nack("v1"));
        assert!(invalid(&t.annotate(&statuses, &cache)).is_empty());
        t.event(&Event::Ack {
            type_url: ROUTE.into(),
            version: "v1".into(),
        });
        t.object_changed(proxy_ref("bad"));
        t.built(&snapshot("v2"));
        t.event(&nack("v2"));
        assert_eq!(invalid(&t.annotate(&statuses, &cache)), ["bad"]);
        Ok(())
    }
}
