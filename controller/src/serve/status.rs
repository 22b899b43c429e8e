//! The status writer: while this replica leads, writes each routing object's
//! status when it differs from what the object carries (no-ops are skipped),
//! as merge patches of the status subresource, several at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::dag::status::Current;
use crate::dag::{ObjectKind, ObjectRef, ObjectStatus, Statuses};
use crate::metrics::Metrics;

/// Upstream truncates condition messages to this many bytes.
const LONG_MESSAGE: usize = 32760;

/// The status each object carries now, as last seen by the watches.
pub type LiveStatuses = Arc<Mutex<BTreeMap<ObjectRef, LiveStatus>>>;

/// A status as an object carries it, kept as compact JSON text: one is held
/// per HTTPProxy and IngressRoute, and the text is a fraction of the size of
/// a `serde_json::Value` tree. It is parsed only when the writer compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStatus(Box<str>);

impl LiveStatus {
    /// The status of an object (`None` and unserialisable as `null`).
    pub fn of<T: serde::Serialize>(status: &T) -> Self {
        let text = serde_json::to_string(status).unwrap_or_else(|_| "null".into());
        Self(text.into_boxed_str())
    }

    /// The status as JSON.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= LONG_MESSAGE {
        return s.to_string();
    }
    let mut end = LONG_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The `status` an object should carry. `previous` is its current status: the
/// `Valid` condition keeps its `lastTransitionTime` while its truth holds.
pub fn desired(kind: ObjectKind, s: &ObjectStatus, previous: Option<&Value>, now: &str) -> Value {
    match kind {
        ObjectKind::IngressRoute => json!({
            "currentStatus": s.current.as_str(),
            "description": s.description,
        }),
        ObjectKind::HTTPProxy => {
            let valid = s.current == Current::Valid;
            let truth = if valid { "True" } else { "False" };
            let previous_valid = previous
                .and_then(|p| p.get("conditions"))
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Valid"));
            let since = match previous_valid {
                Some(c) if c["status"] == truth => c["lastTransitionTime"].clone(),
                _ => Value::String(now.to_string()),
            };
            let problems = |ps: &[crate::dag::status::Problem]| -> Vec<Value> {
                ps.iter()
                    .map(|p| {
                        json!({"type": p.r#type, "status": "True", "reason": p.reason,
                               "message": truncate(&p.message)})
                    })
                    .collect()
            };
            let mut condition = json!({
                "type": "Valid",
                "status": truth,
                "observedGeneration": s.generation,
                "lastTransitionTime": since,
                "reason": if valid { "Valid" } else { "ErrorPresent" },
                "message": if valid { "Valid HTTPProxy" } else { "At least one error present, see Errors for details" },
            });
            if !s.errors.is_empty() {
                condition["errors"] = Value::Array(problems(&s.errors));
            }
            if !s.warnings.is_empty() {
                condition["warnings"] = Value::Array(problems(&s.warnings));
            }
            json!({
                "currentStatus": s.current.as_str(),
                "description": s.description,
                "conditions": [condition],
            })
        }
    }
}

/// Whether `live` already says what `want` says (fields we do not write, such
/// as `loadBalancer`, are ignored).
pub fn same(want: &Value, live: Option<&Value>) -> bool {
    let Some(live) = live else {
        return false;
    };
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().all(|(k, v)| same(v, l.get(k))),
        (Value::Array(w), Value::Array(l)) => {
            w.len() == l.len() && w.iter().zip(l).all(|(a, b)| same(a, Some(b)))
        }
        _ => want == live,
    }
}

fn resource(kind: ObjectKind) -> ApiResource {
    match kind {
        ObjectKind::HTTPProxy => ApiResource::erase::<contour_crds::HTTPProxy>(&()),
        ObjectKind::IngressRoute => ApiResource::erase::<contour_crds::IngressRoute>(&()),
    }
}

fn kind_label(kind: ObjectKind) -> Vec<(&'static str, String)> {
    vec![("kind", format!("{kind:?}"))]
}

async fn write(
    client: kube::Client,
    r: ObjectRef,
    status: Value,
    metrics: Arc<Metrics>,
) -> Option<(ObjectRef, Value)> {
    let api: Api<DynamicObject> = Api::namespaced_with(client, &r.namespace, &resource(r.kind));
    let labels = kind_label(r.kind);
    metrics.status_updates.get_or_create(&labels).inc();
    let patch = json!({"status": status});
    let mut attempt = 0u32;
    loop {
        match api
            .patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                metrics.status_success.get_or_create(&labels).inc();
                return Some((r, status));
            }
            Err(kube::Error::Api(e)) if e.code == 404 => return None,
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => {
                metrics.status_conflict.get_or_create(&labels).inc();
            }
            Err(e) if attempt < 5 => {
                tracing::debug!(namespace = %r.namespace, name = %r.name, error = %e, "status write failed; retrying");
            }
            Err(e) => {
                metrics.status_failed.get_or_create(&labels).inc();
                tracing::warn!(kind = ?r.kind, namespace = %r.namespace, name = %r.name, error = %e, "status write failed");
                return None;
            }
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
    }
}

/// Objects written per round before new statuses are looked at again.
const CHUNK: usize = 64;

/// What is left to check and write: objects whose status changed in recent
/// builds first (oldest change first), then the backlog (everything, once,
/// after this replica becomes leader).
#[derive(Debug, Default)]
struct Queue {
    urgent: std::collections::VecDeque<ObjectRef>,
    queued: std::collections::BTreeSet<ObjectRef>,
    backlog: std::collections::BTreeSet<ObjectRef>,
}

impl Queue {
    fn changed(&mut self, r: &ObjectRef) {
        self.backlog.remove(r);
        if self.queued.insert(r.clone()) {
            self.urgent.push_back(r.clone());
        }
    }

    fn next_chunk(&mut self) -> Vec<ObjectRef> {
        let mut out = Vec::with_capacity(CHUNK);
        while out.len() < CHUNK {
            if let Some(r) = self.urgent.pop_front() {
                self.queued.remove(&r);
                out.push(r);
            } else if let Some(r) = self.backlog.pop_first() {
                out.push(r);
            } else {
                break;
            }
        }
        out
    }
}

/// Writes statuses while `leader` is true: what changed in the latest builds
/// first, in chunks, so a new object's status is not stuck behind a backlog.
pub async fn run(
    client: kube::Client,
    mut statuses: watch::Receiver<Arc<Statuses>>,
    live: LiveStatuses,
    mut leader: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let mut current: Arc<Statuses> = Arc::new(Statuses::new());
    let mut queue = Queue::default();
    let mut was_leader = false;
    loop {
        let leading = *leader.borrow_and_update();
        if statuses.has_changed().unwrap_or(false) {
            let next = statuses.borrow_and_update().clone();
            if current.is_empty() {
                // The first build after start: everything is backlog, so
                // that later changes overtake it.
                queue.backlog.extend(next.keys().cloned());
            } else {
                // The maps share what did not change: only changes are visited.
                for d in current.diff(&next) {
                    if let (_, Some((r, _))) = crate::dag::diff_sides(d) {
                        queue.changed(r);
                    }
                }
            }
            current = next;
        }
        if leading && !was_leader {
            queue.backlog = current
                .keys()
                .filter(|r| !queue.queued.contains(*r))
                .cloned()
                .collect();
        }
        was_leader = leading;
        let chunk = if leading { queue.next_chunk() } else { vec![] };
        if chunk.is_empty() {
            tokio::select! {
                changed = statuses.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // `changed()` marked the value seen; look at it above.
                    statuses.mark_changed();
                }
                changed = leader.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let now = k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .map(|t| t.to_string())
            .unwrap_or_default();
        // The live statuses are copied out under the lock (the watches
        // update them) and parsed after it.
        let held: Vec<(ObjectRef, Option<LiveStatus>)> = {
            let live = match live.lock() {
                Ok(l) => l,
                Err(p) => p.into_inner(),
            };
            chunk
                .into_iter()
                .map(|r| {
                    let held = live.get(&r).cloned();
                    (r, held)
                })
                .collect()
        };
        let jobs: Vec<(ObjectRef, Value)> = held
            .into_iter()
            .filter_map(|(r, held)| {
                let s = current.get(&r)?;
                let have = held.as_ref().map(LiveStatus::value);
                let want = desired(r.kind, s, have.as_ref(), &now);
                if same(&want, have.as_ref()) {
                    metrics.status_noop.get_or_create(&kind_label(r.kind)).inc();
                    None
                } else {
                    Some((r, want))
                }
            })
            .collect();
        if !jobs.is_empty() {
            tracing::debug!(count = jobs.len(), "writing statuses");
        }
        let written: Vec<_> = futures::stream::iter(jobs)
            .map(|(r, v)| write(client.clone(), r, v, metrics.clone()))
            .buffer_unordered(16)
            .collect()
            .await;
        // Remember what was written until the watch reports it back.
        let mut live = match live.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        for (r, v) in written.into_iter().flatten() {
            live.insert(r, LiveStatus::of(&v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn httpproxy_status_matches_upstream_and_keeps_transition_time() {
        let mut s = ObjectStatus::valid("Valid HTTPProxy", 3);
        let v = desired(ObjectKind::HTTPProxy, &s, None, "2026-01-01T00:00:00Z");
        assert_eq!(v["currentStatus"], "valid");
        assert_eq!(v["conditions"][0]["reason"], "Valid");
        assert_eq!(v["conditions"][0]["observedGeneration"], 3);
        let later = desired(ObjectKind::HTTPProxy, &s, Some(&v), "2026-02-02T00:00:00Z");
        assert_eq!(
            later["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        assert!(same(&later, Some(&v)), "an unchanged status is a no-op");

        s.error("TLSError", "SecretNotValid", "x".repeat(40000));
        let bad = desired(ObjectKind::HTTPProxy, &s, Some(&v), "2026-02-02T00:00:00Z");
        assert_eq!(bad["conditions"][0]["status"], "False");
        assert_eq!(bad["conditions"][0]["reason"], "ErrorPresent");
        assert_eq!(
            bad["conditions"][0]["lastTransitionTime"],
            "2026-02-02T00:00:00Z"
        );
        assert_eq!(
            bad["conditions"][0]["errors"][0]["message"]
                .as_str()
                .map(str::len),
            Some(LONG_MESSAGE)
        );
        assert!(!same(&bad, Some(&v)));
    }

    #[test]
    fn recent_changes_jump_the_backlog() {
        let r = |n: &str| ObjectRef {
            kind: ObjectKind::HTTPProxy,
            namespace: "ns".into(),
            name: n.into(),
        };
        let mut q = Queue {
            backlog: (0..200).map(|i| r(&format!("old-{i:03}"))).collect(),
            ..Default::default()
        };
        q.changed(&r("new"));
        q.changed(&r("new"));
        let first = q.next_chunk();
        assert_eq!(first[0], r("new"));
        assert_eq!(first.len(), CHUNK);
        assert_eq!(first.iter().filter(|x| **x == r("new")).count(), 1);
        let mut total = first.len();
        loop {
            let c = q.next_chunk();
            if c.is_empty() {
                break;
            }
            total += c.len();
        }
        assert_eq!(total, 201);
    }

    #[test]
    fn fields_we_do_not_write_do_not_count() {
        let want = json!({"currentStatus": "valid", "description": "d"});
        let live = json!({"currentStatus": "valid", "description": "d", "loadBalancer": {}});
        assert!(same(&want, Some(&live)));
        assert!(!same(&want, None));
    }
}
