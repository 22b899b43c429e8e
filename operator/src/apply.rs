//! Step 5: server-side apply of every child, in [`Resources::children`]
//! order, with one field manager (`contour-operator`), forced (we own the
//! fields we set; fields set by others are left alone).
//!
//! - A child that exists without our ownership labels is a stranger: it is
//!   neither adopted nor changed, and the reconcile reports it.
//! - A child whose live object already has every field we would set, with
//!   the hash of the same desired object, is not written: a reconcile that
//!   changes nothing sends no writes.
//! - A Deployment whose replicas we stop applying (an autoscaler took them
//!   over) would have the field removed and reset to 1 by server-side apply;
//!   the replicas are first handed to a second field manager
//!   ([`HANDOVER_MANAGER`]) at their live value, so they stay as they are.
//! - Upgrade order ([`Gate`]): a change to an existing Envoy workload waits
//!   until Contour's Deployment has rolled out (Envoy's new configuration
//!   may need the new Contour); the next reconcile, woken by the
//!   Deployment's status, applies it. A new Envoy workload is never held.
//!
//! [`Resources::children`]: crate::build::Resources::children

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::build::Child;
use crate::names::{APPLIED_HASH, FIELD_MANAGER, Names};

/// Errors of the apply step.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A read or write failed.
    #[error("applying {child}: {source}")]
    Kube {
        /// The child.
        child: String,
        /// Cause.
        source: kube::Error,
    },
    /// Objects of our names exist without our labels.
    #[error(
        "{} already exist{} without this ContourDeployment's labels; not taking over (delete or rename them)",
        .0.join(", "),
        if .0.len() == 1 { "s" } else { "" }
    )]
    Strangers(Vec<String>),
}

/// What the apply step did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Writes sent.
    pub writes: u32,
    /// Children not applied because a stranger holds the name.
    pub strangers: Vec<String>,
    /// The live objects after the step, by `Kind/name` (namespace omitted:
    /// the workloads the status reads live in the instance's namespace).
    pub live: BTreeMap<String, DynamicObject>,
    /// The child whose change waits for the gate, if one does.
    pub held: Option<String>,
}

/// An ordering rule: a change to the child `held` (`Kind/name`) is applied
/// only once the child `after` (`Kind/name`, applied earlier in the same
/// pass) has rolled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// The child that must have rolled out (Contour's Deployment).
    pub after: String,
    /// The child that waits (Envoy's workload).
    pub held: String,
}

/// Whether a live Deployment has rolled out its current spec: its
/// controller has seen the latest generation, every replica runs the new
/// pod template, no old replica is left, and every new one is available
/// (what `kubectl rollout status` waits for).
pub fn rolled_out(live: Option<&DynamicObject>) -> bool {
    let Some(o) = live else {
        return false;
    };
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let spec = &o.data["spec"];
    let s = &o.data["status"];
    let desired = spec["replicas"].as_i64().unwrap_or(1);
    let current = match (s["observedGeneration"].as_i64(), o.metadata.generation) {
        (Some(seen), Some(generation)) => seen >= generation,
        _ => false,
    };
    let updated = int(&s["updatedReplicas"]);
    current
        && updated >= desired
        && int(&s["replicas"]) <= updated
        && int(&s["availableReplicas"]) >= updated
}

/// The field manager that holds a Deployment's replicas after we stop
/// applying them, until the autoscaler's first write takes them.
pub const HANDOVER_MANAGER: &str = "contour-operator-handover";

/// Whether `manager` owns `spec.replicas` of `live` (by an apply).
pub fn owns_replicas(live: &DynamicObject, manager: &str) -> bool {
    live.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some(manager)
            && m.operation.as_deref() == Some("Apply")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| !f.0["f:spec"]["f:replicas"].is_null())
    })
}

/// Hash of the desired object (without the hash annotation).
pub fn desired_hash(object: &Value) -> String {
    let text = serde_json::to_string(object).unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Whether `live` has every field of `desired` with the same value. Arrays
/// match element by element (live may have more); a default scalar or an
/// empty object/array matches a missing field (the API server drops them).
pub fn contains(desired: &Value, live: Option<&Value>) -> bool {
    let absent_ok = |d: &Value| match d {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(|v| contains(v, None)),
    };
    let Some(live) = live.filter(|l| !l.is_null()) else {
        return absent_ok(desired);
    };
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, v)| contains(v, l.get(k))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() <= l.len() && d.iter().zip(l).all(|(d, l)| contains(d, Some(l)))
        }
        (Value::Number(d), Value::Number(l)) => d.as_f64() == l.as_f64(),
        (d, l) => d == l,
    }
}

fn api(client: &Client, child: &Child) -> Api<DynamicObject> {
    match &child.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &child.resource),
        None => Api::all_with(client.clone(), &child.resource),
    }
}

/// Applies `children` of the instance `names`.
pub async fn apply(
    client: &Client,
    names: &Names,
    children: &[Child],
    gate: Option<&Gate>,
) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();
    // The live objects are read all at once (a reconcile that changes
    // nothing is these reads and no write); writes stay in children order.
    let lives = futures::future::try_join_all(children.iter().map(|child| async move {
        api(client, child)
            .get_opt(&child.name)
            .await
            .map_err(|source| ApplyError::Kube {
                child: child.describe(),
                source,
            })
    }))
    .await?;
    for (child, live) in children.iter().zip(lives) {
        let err = |source| ApplyError::Kube {
            child: child.describe(),
            source,
        };
        let api = api(client, child);
        let mut object = child.object.clone();
        let hash = desired_hash(&object);
        object["metadata"]["annotations"][APPLIED_HASH] = Value::String(hash.clone());
        let key = format!("{}/{}", child.resource.kind, child.name);
        if let Some(live) = live {
            if !names.owns(live.metadata.labels.as_ref()) {
                report.strangers.push(child.describe());
                continue;
            }
            let same_hash = live
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(APPLIED_HASH))
                == Some(&hash);
            let live_json = serde_json::to_value(&live).unwrap_or_default();
            if same_hash && contains(&object, Some(&live_json)) {
                report.live.insert(key, live);
                continue;
            }
            if child.resource.kind == "Deployment"
                && object["spec"].get("replicas").is_none()
                && owns_replicas(&live, FIELD_MANAGER)
            {
                let replicas = live.data["spec"]["replicas"].clone();
                let handover = serde_json::json!({
                    "apiVersion": object["apiVersion"], "kind": object["kind"],
                    "metadata": {"name": child.name},
                    "spec": {"replicas": replicas}});
                api.patch(
                    &child.name,
                    &PatchParams::apply(HANDOVER_MANAGER).force(),
                    &Patch::Apply(&handover),
                )
                .await
                .map_err(err)?;
                report.writes += 1;
                tracing::info!(child = %child.describe(), %replicas, "replicas handed over to the autoscaler");
            }
            if let Some(g) = gate.filter(|g| g.held == key)
                && !rolled_out(report.live.get(&g.after))
            {
                tracing::info!(child = %child.describe(), waits_for = %g.after, "update held until Contour has rolled out");
                report.held = Some(child.describe());
                report.live.insert(key, live);
                continue;
            }
        }
        let applied = api
            .patch(
                &child.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(err)?;
        report.writes += 1;
        tracing::info!(child = %child.describe(), "applied");
        report.live.insert(key, applied);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_with_more_fields_contains_desired() {
        let d = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "a"}]}}});
        let l = json!({"spec": {"replicas": 2, "paused": false,
            "template": {"containers": [{"name": "a", "terminationMessagePath": "/dev/x"}]}}});
        assert!(contains(&d, Some(&l)));
    }

    #[test]
    fn an_edited_field_is_noticed() {
        let d = json!({"spec": {"replicas": 2}});
        assert!(!contains(&d, Some(&json!({"spec": {"replicas": 3}}))));
        assert!(!contains(&d, Some(&json!({"spec": {}}))));
        let d = json!({"a": [{"name": "x"}, {"name": "y"}]});
        assert!(!contains(&d, Some(&json!({"a": [{"name": "x"}]}))));
    }

    fn deployment(generation: i64, spec: Value, status: Value) -> DynamicObject {
        let mut o = DynamicObject::new(
            "contour-x",
            &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        )
        .data(json!({"spec": spec, "status": status}));
        o.metadata.generation = Some(generation);
        o
    }

    #[test]
    fn a_deployment_has_rolled_out_when_every_new_replica_is_available() {
        let spec = json!({"replicas": 2});
        let done = json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
            "availableReplicas": 2});
        assert!(rolled_out(Some(&deployment(3, spec.clone(), done.clone()))));
        // The controller has not seen the new spec yet.
        assert!(!rolled_out(Some(&deployment(4, spec.clone(), done))));
        // One replica still runs the old template.
        let old_left = json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2,
            "availableReplicas": 2});
        assert!(!rolled_out(Some(&deployment(3, spec.clone(), old_left))));
        // A new replica is not available yet.
        let starting = json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
            "availableReplicas": 1});
        assert!(!rolled_out(Some(&deployment(3, spec.clone(), starting))));
        assert!(!rolled_out(Some(&deployment(3, spec, json!({})))));
        assert!(!rolled_out(None));
        // Scaled to zero: nothing to wait for once observed.
        let zero = json!({"observedGeneration": 1});
        assert!(rolled_out(Some(&deployment(
            1,
            json!({"replicas": 0}),
            zero
        ))));
    }

    #[test]
    fn dropped_defaults_match() {
        let d = json!({"spec": {"hostNetwork": false, "emptyDir": {}, "labels": {}}});
        assert!(contains(&d, Some(&json!({"spec": {}}))));
        assert!(!contains(&json!({"x": true}), Some(&json!({}))));
    }
}
