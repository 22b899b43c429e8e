//! The controller: reconciles every ContourDeployment when it changes, when
//! one of its children changes or disappears (children are watched by our
//! labels, so a deleted or hand-edited child is repaired at once), when the
//! ServiceMonitor CRD appears or goes, when a HorizontalPodAutoscaler of one
//! of its Deployments appears or changes, and periodically (certificate
//! renewal, workload counts in the status). A failed reconcile is retried
//! with exponential backoff per instance ([`crate::backoff`]), reset by a
//! success; watches that fail (the API server is away) back off too
//! ([`WatchErrors`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;

use contour_crds::ContourDeployment;

use crate::backoff::{Backoff, Failures, WatchErrors};
use crate::dereference::SERVICE_MONITOR_CRD;
use crate::metrics::OperatorMetrics;
use crate::names::{MANAGED_BY, OWNER_NAME, OWNER_NAMESPACE};
use crate::{Context, Error};

/// Longest time between two reconciles of one instance.
pub const RESYNC: Duration = Duration::from_secs(300);

fn owner<K: Resource>(obj: K) -> Option<ObjectRef<ContourDeployment>> {
    let labels = obj.meta().labels.as_ref()?;
    Some(ObjectRef::new(labels.get(OWNER_NAME)?).within(labels.get(OWNER_NAMESPACE)?))
}

/// The instances an autoscaler may concern: its target is named
/// `contour-<instance>` or `envoy-<instance>` in the instance's namespace.
/// (A guess that names no instance is dropped by the controller.)
fn autoscaled(hpa: HorizontalPodAutoscaler) -> Vec<ObjectRef<ContourDeployment>> {
    let Some(ns) = hpa.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    let target = hpa
        .spec
        .map(|s| s.scale_target_ref.name)
        .unwrap_or_default();
    ["contour-", "envoy-"]
        .iter()
        .filter_map(|prefix| target.strip_prefix(prefix))
        .map(|instance| ObjectRef::new(instance).within(ns))
        .collect()
}

/// What the reconcile and error functions share.
struct Shared {
    ctx: Context,
    metrics: Arc<OperatorMetrics>,
    /// Consecutive failed reconciles of each instance.
    failures: Failures<ObjectRef<ContourDeployment>>,
}

async fn reconcile(cd: Arc<ContourDeployment>, shared: Arc<Shared>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let outcome = crate::reconcile(&shared.ctx, &cd).await;
    shared.metrics.observe(
        outcome.as_ref().map(|_| ()).map_err(Error::category),
        started.elapsed(),
    );
    let report = outcome?;
    shared.failures.succeeded(&ObjectRef::from_obj(&*cd));
    tracing::info!(
        namespace = %cd.namespace().unwrap_or_default(),
        name = %cd.name_any(),
        writes = report.writes,
        certificates_generated = report.certificates_generated,
        millis = started.elapsed().as_millis() as u64,
        "reconciled"
    );
    let until_renewal = report
        .renew_at
        .map(|at| at - OffsetDateTime::now_utc())
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(RESYNC);
    Ok(Action::requeue(
        until_renewal.clamp(Duration::from_secs(1), RESYNC),
    ))
}

/// Retries a failed instance after a delay that doubles with each
/// consecutive failure (200 ms, 400 ms, … at most 5 minutes): an API server
/// that is away or overloaded is not hammered, and the instance is never
/// given up on. A change to the instance or its children still reconciles
/// it at once.
fn error_policy(cd: Arc<ContourDeployment>, error: &Error, shared: Arc<Shared>) -> Action {
    let (failures, wait) = shared.failures.failed(ObjectRef::from_obj(&*cd));
    tracing::warn!(
        namespace = %cd.namespace().unwrap_or_default(),
        name = %cd.name_any(),
        category = error.category(),
        error = %error,
        failures,
        retry_in_ms = wait.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(wait)
}

/// Runs the controller until SIGTERM/SIGINT. With `namespace`, only the
/// ContourDeployments of that namespace are reconciled.
pub async fn run(ctx: Context, namespace: Option<String>) {
    run_with_metrics(ctx, namespace, OperatorMetrics::new()).await
}

/// [`run`], counting reconciles in `metrics` (and marking it ready).
pub async fn run_with_metrics(
    ctx: Context,
    namespace: Option<String>,
    metrics: Arc<OperatorMetrics>,
) {
    let client = ctx.client.clone();
    fn api<K>(client: &kube::Client, namespace: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let children =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_changes = watcher(
        crds,
        watcher::Config::default().fields(&format!("metadata.name={SERVICE_MONITOR_CRD}")),
    )
    .default_backoff()
    .touched_objects()
    // A failed watch (it backs off above) is no reason to reconcile.
    .filter_map(|touched| futures::future::ready(touched.ok().map(|_| ())));
    Controller::new(
        api::<ContourDeployment>(&client, &namespace),
        watcher::Config::default(),
    )
    .watches(
        api::<ServiceAccount>(&client, &namespace),
        children.clone(),
        owner,
    )
    .watches(
        Api::<ClusterRole>::all(client.clone()),
        children.clone(),
        owner,
    )
    .watches(
        Api::<ClusterRoleBinding>::all(client.clone()),
        children.clone(),
        owner,
    )
    .watches(Api::<Role>::all(client.clone()), children.clone(), owner)
    .watches(
        Api::<RoleBinding>::all(client.clone()),
        children.clone(),
        owner,
    )
    .watches(
        api::<ConfigMap>(&client, &namespace),
        children.clone(),
        owner,
    )
    .watches(api::<Secret>(&client, &namespace), children.clone(), owner)
    .watches(api::<Service>(&client, &namespace), children.clone(), owner)
    .watches(
        api::<Deployment>(&client, &namespace),
        children.clone(),
        owner,
    )
    .watches(
        api::<DaemonSet>(&client, &namespace),
        children.clone(),
        owner,
    )
    .watches(
        api::<PodDisruptionBudget>(&client, &namespace),
        children,
        owner,
    )
    .watches(
        api::<HorizontalPodAutoscaler>(&client, &namespace),
        watcher::Config::default(),
        autoscaled,
    )
    .reconcile_all_on(crd_changes)
    .trigger_backoff(WatchErrors::default())
    .shutdown_on_signal()
    .run(reconcile, error_policy, {
        metrics.set_ready();
        Arc::new(Shared {
            ctx,
            metrics,
            failures: Failures::new(Backoff::default()),
        })
    })
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "controller event");
        }
    })
    .await;
}
