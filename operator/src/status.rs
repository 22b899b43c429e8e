//! Step 7: the status — conditions `Available`, `Progressing`, `Degraded`
//! (with `observedGeneration`), `SettingsHonoured` (False names the
//! `runtimeSettings` keys this build does not apply), ready counts, certificate expiry, whether
//! ServiceMonitors exist. [`compute`] is pure; [`write`] patches the status
//! subresource only when it changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use contour_crds::contourdeployment::WorkloadStatus;
use contour_crds::{ContourDeployment, ContourDeploymentStatus};

/// Errors writing the status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The patch failed.
    #[error("writing status: {0}")]
    Kube(#[from] kube::Error),
}

/// What one reconcile found out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Contour's and Envoy's pods, when the workloads were read.
    pub workloads: Option<(WorkloadStatus, WorkloadStatus)>,
    /// Whether each workload's controller has seen its latest spec.
    pub workloads_current: bool,
    /// Whether a change to Envoy's workload waits for Contour's rollout.
    pub envoy_held: bool,
    /// First certificate expiry.
    pub certificate_expiry: Option<Time>,
    /// `Created`, `Disabled`, `CRDAbsent`.
    pub service_monitors: Option<String>,
    /// What went wrong: (reason, message).
    pub problem: Option<(String, String)>,
    /// `runtimeSettings` keys not applied, when the spec validated.
    pub ignored_settings: Option<Vec<String>>,
}

/// Pod counts of a live Deployment or DaemonSet, and whether its
/// controller has observed its current generation.
pub fn workload_status(live: Option<&DynamicObject>) -> (WorkloadStatus, bool) {
    let Some(o) = live else {
        return (WorkloadStatus::default(), false);
    };
    let v = serde_json::to_value(o).unwrap_or(Value::Null);
    let int = |v: &Value| v.as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(0);
    let s = &v["status"];
    let current = s["observedGeneration"].as_i64() >= o.metadata.generation;
    let counts = if v["kind"] == "DaemonSet" {
        WorkloadStatus {
            desired: int(&s["desiredNumberScheduled"]),
            ready: int(&s["numberReady"]),
            updated: int(&s["updatedNumberScheduled"]),
        }
    } else {
        WorkloadStatus {
            desired: v["spec"]["replicas"]
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(1),
            ready: int(&s["readyReplicas"]),
            updated: int(&s["updatedReplicas"]),
        }
    };
    (counts, current && s.is_object())
}

fn condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let last = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: last,
    }
}

/// The status for `o`, keeping transition times of unchanged conditions.
pub fn compute(
    previous: Option<&ContourDeploymentStatus>,
    generation: Option<i64>,
    o: &Observation,
    now: &Time,
) -> ContourDeploymentStatus {
    let prev = previous.cloned().unwrap_or_default();
    let c = |type_: &str, status: &str, reason: &str, message: String| {
        condition(
            &prev.conditions,
            type_,
            status,
            reason,
            message,
            generation,
            now,
        )
    };
    let mut conditions = Vec::new();
    let (contour, envoy, ready) = match &o.workloads {
        Some((contour, envoy)) => {
            let counts = format!(
                "contour {}/{}, envoy {}/{}",
                contour.ready, contour.desired, envoy.ready, envoy.desired
            );
            conditions.push(if contour.ready < 1 {
                c(
                    "Available",
                    "False",
                    "ContourUnavailable",
                    format!("no Contour pod is ready ({counts})"),
                )
            } else if envoy.ready < 1 {
                c(
                    "Available",
                    "False",
                    "EnvoyUnavailable",
                    format!("no Envoy pod is ready ({counts})"),
                )
            } else {
                c(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    counts.clone(),
                )
            });
            let done = o.workloads_current
                && [contour, envoy]
                    .iter()
                    .all(|w| w.ready >= w.desired && w.updated >= w.desired);
            conditions.push(if o.envoy_held {
                c(
                    "Progressing",
                    "True",
                    "WaitingForContour",
                    format!("Envoy is updated once Contour has rolled out ({counts})"),
                )
            } else if done {
                c("Progressing", "False", "RolloutComplete", counts.clone())
            } else {
                c("Progressing", "True", "RollingOut", counts.clone())
            });
            (Some(contour.clone()), Some(envoy.clone()), Some(counts))
        }
        None => {
            for t in ["Available", "Progressing"] {
                conditions.push(
                    prev.conditions
                        .iter()
                        .find(|x| x.type_ == t)
                        .cloned()
                        .unwrap_or_else(|| c(t, "Unknown", "NotReconciled", String::new())),
                );
            }
            (prev.contour.clone(), prev.envoy.clone(), prev.ready.clone())
        }
    };
    match &o.ignored_settings {
        Some(keys) if keys.is_empty() => {
            conditions.push(c(
                "SettingsHonoured",
                "True",
                "AllApplied",
                "every runtimeSettings key is applied".into(),
            ));
        }
        Some(keys) => conditions.push(c(
            "SettingsHonoured",
            "False",
            "SettingsIgnored",
            format!(
                "runtimeSettings keys this build does not apply: {}",
                keys.join(", ")
            ),
        )),
        None => {
            if let Some(previous) = prev
                .conditions
                .iter()
                .find(|x| x.type_ == "SettingsHonoured")
            {
                conditions.push(previous.clone());
            }
        }
    }
    conditions.push(match &o.problem {
        Some((reason, message)) => c("Degraded", "True", reason, message.clone()),
        None => c("Degraded", "False", "AsExpected", String::new()),
    });
    ContourDeploymentStatus {
        observed_generation: generation,
        conditions,
        ready,
        contour,
        envoy,
        certificate_expiry: o.certificate_expiry.clone().or(prev.certificate_expiry),
        service_monitors: o.service_monitors.clone().or(prev.service_monitors),
    }
}

/// Writes `status` unless `cd` already carries it; returns whether it wrote.
pub async fn write(
    client: &kube::Client,
    cd: &ContourDeployment,
    status: &ContourDeploymentStatus,
) -> Result<bool, StatusError> {
    if cd.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let api: Api<ContourDeployment> = Api::namespaced(
        client.clone(),
        cd.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = cd.metadata.name.as_deref().unwrap_or_default();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await?;
    Ok(true)
}
