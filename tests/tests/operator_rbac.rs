//! The chart's RBAC is exactly what the operator needs: the rendered
//! ServiceAccount, ClusterRole(Binding) and Role(Binding) are applied to the
//! real API server (RBAC on), and the operator runs as that ServiceAccount —
//! full reconciles (cluster-wide and namespace-scoped Contour, monitoring, a
//! PodDisruptionBudget, prune, the finalizer), then the leader-elected
//! controller with every watch — without a single 403. As that account,
//! what the operator never does is refused, and the API server's escalation
//! check refuses any Role granting what it does not hold.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use contour::serve::leader::LeaderConfig;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::{Value, json};
use tokio::sync::watch;

use contour_crds::{ContourDeployment, HTTPProxy};
use contour_operator::metrics::OperatorMetrics;
use contour_tests::ApiServer;
use contour_tests::operator::{condition, create, ctx, reconcile, status};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const RELEASE: &str = "rbac";
const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";

/// Records every request the API server refused with 403.
#[derive(Clone, Default)]
struct Refusals(Arc<Mutex<Vec<String>>>);

impl Refusals {
    fn taken(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

struct Recorded<S> {
    inner: S,
    seen: Arc<Mutex<Vec<String>>>,
}

impl<S> tower::Layer<S> for Refusals {
    type Service = Recorded<S>;
    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            seen: self.0.clone(),
        }
    }
}

type Boxed<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for Recorded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Boxed<Result<S::Response, S::Error>>;
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let get = req.method() == http::Method::GET;
        let what = format!("{} {}", req.method(), req.uri());
        let seen = self.seen.clone();
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            if response.status().is_client_error()
                && !(get && response.status() == http::StatusCode::NOT_FOUND)
                && let Ok(mut seen) = seen.lock()
            {
                seen.push(format!("{} {what}", response.status().as_u16()));
            }
            Ok(response)
        })
    }
}

fn documents(yaml: &str) -> BoxResult<Vec<Value>> {
    Ok(contour_tests::k8s::yaml_documents(yaml)?)
}

/// The chart rendered for release [`RELEASE`] in `namespace`.
fn render(namespace: &str) -> BoxResult<Vec<Value>> {
    let bin = contour_tests::tools::helm()?;
    let chart = contour_tests::tools::repo_root().join("helm/contour-operator");
    let out = std::process::Command::new(bin)
        .args(["template", RELEASE])
        .arg(&chart)
        .args(["--namespace", namespace])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "helm template failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    documents(&String::from_utf8(out.stdout)?)
}

/// Installs the Prometheus Operator's ServiceMonitor CRD.
async fn install_service_monitor_crd(admin: &Client) -> BoxResult<()> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(
        contour_tests::tools::servicemonitor_crd()?,
    )?)?;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.patch(
        SERVICE_MONITOR_CRD,
        &PatchParams::apply("contour-rs-tests").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    let started = Instant::now();
    loop {
        let established = crds
            .get(SERVICE_MONITOR_CRD)
            .await?
            .status
            .is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the ServiceMonitor CRD is not established".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operator as the chart installs it: its rendered RBAC applied in a
/// fresh namespace, and a client acting as its ServiceAccount that records
/// every 403.
struct Operator {
    namespace: String,
    account: String,
    rules: Vec<Value>,
    client: Client,
    refusals: Refusals,
}

async fn operator(prefix: &str) -> BoxResult<Operator> {
    let server = ApiServer::shared()?;
    let admin = server.admin_client().await?;
    contour_tests::k8s::install_crds(&admin).await?;
    install_service_monitor_crd(&admin).await?;
    let namespace = server.namespace(prefix).await?;
    let docs = render(&namespace)?;
    let mut account = None;
    let mut rules = Vec::new();
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ] {
        let of_kind: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
        assert_eq!(of_kind.len(), 1, "one {kind} rendered");
        let doc = of_kind[0];
        let resource = contour_tests::k8s::resource_of(doc)?;
        let name = doc["metadata"]["name"].as_str().ok_or("no name")?;
        let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => {
                assert_eq!(ns, namespace, "{kind} in the release namespace");
                Api::namespaced_with(admin.clone(), ns, &resource)
            }
            None => Api::all_with(admin.clone(), &resource),
        };
        api.patch(
            name,
            &PatchParams::apply("contour-rs-tests").force(),
            &Patch::Apply(doc),
        )
        .await?;
        match kind {
            "ServiceAccount" => account = Some(name.to_string()),
            "ClusterRole" | "Role" => {
                rules.extend(doc["rules"].as_array().cloned().unwrap_or_default())
            }
            _ => {}
        }
    }
    let account = account.ok_or("no ServiceAccount rendered")?;

    contour_tests::init_crypto();
    let yaml = server
        .service_account_kubeconfig_yaml(&namespace, &account)
        .await?;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml)?,
        &Default::default(),
    )
    .await?;
    let refusals = Refusals::default();
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&refusals)
        .build();
    // The RBAC authorizer learns new bindings through its informers.
    let (deployments, all) = (
        Api::<ContourDeployment>::all(client.clone()),
        ListParams::default(),
    );
    contour_tests::k8s::once_authorized(|| deployments.list(&all))
        .await
        .map_err(|e| format!("the ClusterRoleBinding never took effect: {e}"))?;
    refusals.taken();
    Ok(Operator {
        namespace,
        account,
        rules,
        client,
        refusals,
    })
}

async fn gone<K>(api: &Api<K>, name: &str) -> BoxResult<bool>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api.get_opt(name).await?.is_none())
}

/// Waits until `check` holds (20 s at most).
async fn until<F, Fut>(what: &str, mut check: F) -> BoxResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = BoxResult<bool>>,
{
    let started = Instant::now();
    while !check().await? {
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!("{what}: not within 20s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// A metric's samples: `(labels, value)` of every line of family `name`.
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some(labels) = series.strip_prefix(name) else {
            continue;
        };
        if let (true, Ok(v)) = (
            labels.is_empty() || labels.starts_with('{'),
            value.parse::<f64>(),
        ) {
            out.push((labels.to_string(), v));
        }
    }
    out
}

/// The `group/resource verb [names]` of `wanted` that no rule of `held`
/// grants.
fn not_held(held: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<String> {
    let mut out = Vec::new();
    for w in wanted {
        let names = w.resource_names.clone().unwrap_or_default();
        for g in w.api_groups.iter().flatten() {
            for r in w.resources.iter().flatten() {
                for v in &w.verbs {
                    let granted = held.iter().any(|h| {
                        h.api_groups.iter().flatten().any(|x| x == g)
                            && h.resources.iter().flatten().any(|x| x == r)
                            && h.verbs.iter().any(|x| x == v)
                            && match h.resource_names.as_deref() {
                                None | Some([]) => true,
                                Some(held_names) => {
                                    !names.is_empty()
                                        && names.iter().all(|n| held_names.contains(n))
                                }
                            }
                    });
                    if !granted {
                        out.push(format!("{g}/{r} {v} {names:?}"));
                    }
                }
            }
        }
    }
    out
}

/// Without an API server: every rule the operator puts in Contour's
/// ClusterRole and Roles (cluster-wide, per watched namespace, the Lease
/// Role) is held by the chart's ClusterRole, so a right added to
/// `operator/src/build/rbac.rs` and not to the chart fails here by name.
#[test]
fn the_chart_holds_every_right_the_operator_grants_contour() -> TestResult {
    use contour_operator::dereference::Dereferenced;
    use contour_operator::validate::{Images, validate};
    let docs = render("ops")?;
    let cluster_role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .ok_or("no ClusterRole rendered")?;
    let held: Vec<PolicyRule> = serde_json::from_value(cluster_role["rules"].clone())?;
    for spec in [
        json!({}),
        json!({"contour": {"watchNamespaces": ["a", "b"]}}),
        json!({"monitoring": {"serviceMonitors": "On"},
            "envoy": {"workloadType": "Deployment", "podDisruptionBudget": {"minAvailable": 1}}}),
    ] {
        let cd: ContourDeployment = serde_json::from_value(json!({
            "apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment",
            "metadata": {"name": "x", "namespace": "ns", "uid": "0000"}, "spec": spec}))?;
        let v = validate(&cd, &Dereferenced::default(), &Images::default())?;
        let built = contour_operator::build::build(&v, None)?;
        let mut wanted = built.cluster_role.and_then(|c| c.rules).unwrap_or_default();
        for role in built.roles {
            wanted.extend(role.rules.unwrap_or_default());
        }
        assert!(!wanted.is_empty(), "{spec}: no rules built");
        let missing = not_held(&held, &wanted);
        assert!(
            missing.is_empty(),
            "{spec}: the chart's ClusterRole lacks {missing:?}, which the operator grants Contour \
             (the API server would refuse it as an escalation)"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_reconciles_everything_as_the_charts_service_account() -> TestResult {
    let server = ApiServer::shared()?;
    let admin = server.admin_client().await?;
    let op = operator("rbac-operator").await?;
    let sa = op.client.clone();
    let ns = server.namespace("rbac-instances").await?;
    let watched = server.namespace("rbac-watched").await?;
    assert_ne!(ns, op.namespace);

    // (a) A default instance: cluster-wide Contour, a DaemonSet, and
    // ServiceMonitors (the CRD exists, monitoring is Auto).
    create(&admin, &ns, "plain", json!({})).await?;
    let first = reconcile(&sa, &ns, "plain").await?;
    assert!(first.certificates_generated, "{first:?}");
    let cluster_plain = format!("contour:{ns}:plain");
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    accounts.get("contour-plain").await?;
    accounts.get("envoy-plain").await?;
    Api::<ClusterRole>::all(admin.clone())
        .get(&cluster_plain)
        .await?;
    Api::<ClusterRoleBinding>::all(admin.clone())
        .get(&cluster_plain)
        .await?;
    Api::<Role>::namespaced(admin.clone(), &ns)
        .get("contour-plain")
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .get("contour-plain")
        .await?;
    Api::<ConfigMap>::namespaced(admin.clone(), &ns)
        .get("contour-plain")
        .await?;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    for s in ["contourcert-plain", "envoycert-plain", "contourca-plain"] {
        secrets.get(s).await?;
    }
    let services: Api<Service> = Api::namespaced(admin.clone(), &ns);
    for s in ["contour-plain", "envoy-plain", "envoy-plain-metrics"] {
        services.get(s).await?;
    }
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &ns);
    deployments.get("contour-plain").await?;
    Api::<DaemonSet>::namespaced(admin.clone(), &ns)
        .get("envoy-plain")
        .await?;
    let monitors = Api::<DynamicObject>::namespaced_with(
        admin.clone(),
        &ns,
        &contour_operator::build::service_monitor_resource(),
    );
    monitors.get("contour-plain").await?;
    monitors.get("envoy-plain").await?;
    let st = status(&admin, &ns, "plain").await?;
    assert_eq!(condition(&st, "Degraded")["status"], "False", "{st}");
    assert_eq!(st["serviceMonitors"], "Created", "{st}");
    // The Event (a failure to record one is only logged, so look for it).
    let events = Api::<Event>::namespaced(admin.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    assert!(
        events.items.iter().any(|e| {
            e.reason.as_deref() == Some("CertificatesIssued")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("plain")
        }),
        "no CertificatesIssued event: {:?}",
        events.items
    );
    // A second reconcile as the account changes nothing.
    let again = reconcile(&sa, &ns, "plain").await?;
    assert_eq!(again.writes, 0, "{again:?}");

    // (b) Contour scoped to another namespace, Envoy as a Deployment with a
    // PodDisruptionBudget, ServiceMonitors on.
    create(
        &admin,
        &ns,
        "scoped",
        json!({
            "contour": {"watchNamespaces": [watched.clone()]},
            "envoy": {"workloadType": "Deployment", "podDisruptionBudget": {"maxUnavailable": 1}},
            "monitoring": {"serviceMonitors": "On"}
        }),
    )
    .await?;
    reconcile(&sa, &ns, "scoped").await?;
    let cluster_scoped = format!("contour:{ns}:scoped");
    assert!(gone(&Api::<ClusterRole>::all(admin.clone()), &cluster_scoped).await?);
    let watched_roles: Api<Role> = Api::namespaced(admin.clone(), &watched);
    watched_roles.get(&cluster_scoped).await?;
    Api::<RoleBinding>::namespaced(admin.clone(), &watched)
        .get(&cluster_scoped)
        .await?;
    deployments.get("contour-scoped").await?;
    deployments.get("envoy-scoped").await?;
    Api::<PodDisruptionBudget>::namespaced(admin.clone(), &ns)
        .get("envoy-scoped")
        .await?;
    services.get("envoy-scoped-metrics").await?;
    monitors.get("contour-scoped").await?;
    monitors.get("envoy-scoped").await?;
    let st = status(&admin, &ns, "scoped").await?;
    assert_eq!(condition(&st, "Degraded")["status"], "False", "{st}");
    // The Contour account it made can read the watched namespace.
    let contour = server.service_account_client(&ns, "contour-scoped").await?;
    let proxies = Api::<HTTPProxy>::namespaced(contour, &watched);
    let all = ListParams::default();
    contour_tests::k8s::once_authorized(|| proxies.list(&all)).await?;

    // Prune as the account: monitoring and the PDB turned off.
    let cds: Api<ContourDeployment> = Api::namespaced(admin.clone(), &ns);
    cds.patch(
        "scoped",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"monitoring": {"serviceMonitors": "Off"},
            "envoy": {"podDisruptionBudget": null}}})),
    )
    .await?;
    reconcile(&sa, &ns, "scoped").await?;
    assert!(gone(&monitors, "contour-scoped").await?);
    assert!(gone(&monitors, "envoy-scoped").await?);
    assert!(gone(&services, "envoy-scoped-metrics").await?);
    assert!(
        gone(
            &Api::<PodDisruptionBudget>::namespaced(admin.clone(), &ns),
            "envoy-scoped"
        )
        .await?
    );

    // The finalizer as the account: cluster-scoped children and the Roles
    // in the watched namespace go, the instances are released.
    for name in ["plain", "scoped"] {
        cds.delete(name, &DeleteParams::default()).await?;
        reconcile(&sa, &ns, name).await?;
        assert!(gone(&cds, name).await?, "{name} not released");
    }
    assert!(gone(&Api::<ClusterRole>::all(admin.clone()), &cluster_plain).await?);
    assert!(
        gone(
            &Api::<ClusterRoleBinding>::all(admin.clone()),
            &cluster_plain
        )
        .await?
    );
    assert!(gone(&watched_roles, &cluster_scoped).await?);
    assert!(
        gone(
            &Api::<RoleBinding>::namespaced(admin.clone(), &watched),
            &cluster_scoped
        )
        .await?
    );
    assert_eq!(
        op.refusals.taken(),
        Vec::<String>::new(),
        "refused requests"
    );

    // The controller, leader-elected, cluster-wide (the chart's default), as
    // the account: every watch, a reconcile, and the finalizer.
    let metrics = OperatorMetrics::new();
    let (stop_tx, stop) = watch::channel(false);
    let lease = LeaderConfig {
        namespace: op.namespace.clone(),
        name: "contour-operator".into(),
        identity: "rbac-test".into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry: Duration::from_millis(200),
    };
    let controller = tokio::spawn(contour_operator::leader::run_elected(
        ctx(&sa),
        None,
        metrics.clone(),
        lease,
        stop,
    ));
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &op.namespace);
    until("the operator holds its Lease", || async {
        Ok(leases
            .get_opt("contour-operator")
            .await?
            .and_then(|l| l.spec?.holder_identity)
            .as_deref()
            == Some("rbac-test"))
    })
    .await?;
    create(&admin, &ns, "live", json!({})).await?;
    until("the controller reconciled live", || async {
        let st = status(&admin, &ns, "live").await?;
        Ok(condition(&st, "Degraded")["status"] == "False"
            && services.get_opt("envoy-live").await?.is_some())
    })
    .await?;
    cds.delete("live", &DeleteParams::default()).await?;
    let cluster_live = format!("contour:{ns}:live");
    until("the controller released live", || async {
        Ok(gone(&cds, "live").await?
            && gone(&Api::<ClusterRole>::all(admin.clone()), &cluster_live).await?)
    })
    .await?;
    // Let every watch run a while (a refused watch is retried, and recorded).
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_tx.send(true)?;
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
    let refused = op.refusals.taken();
    let forbidden: Vec<&String> = refused.iter().filter(|r| r.starts_with("403")).collect();
    assert!(forbidden.is_empty(), "refused as Forbidden: {forbidden:?}");
    let text = metrics.render();
    let successes: f64 = samples(&text, "contour_operator_reconcile_total")
        .iter()
        .filter(|(l, _)| l.contains("success"))
        .map(|(_, v)| v)
        .sum();
    assert!(successes >= 1.0, "{text}");
    // No reconcile failed, except by the operator's known race (lib.rs
    // set_finalizers): the finalizer patch of a reconcile that read the
    // instance from a cache that had not seen the operator's own previous
    // write — 404 once the instance is gone, 409 when its resourceVersion
    // moved on. Retried, and never a refusal.
    let conflicts = refused
        .iter()
        .filter(|r| {
            (r.starts_with("404 PATCH") || r.starts_with("409 PATCH"))
                && r.contains("/contourdeployments/")
                && !r.contains("/status")
        })
        .count() as f64;
    let mut errors = 0.0;
    for (labels, v) in samples(&text, "contour_operator_reconcile_errors_total") {
        assert!(
            v == 0.0 || labels.contains("FinalizerFailed"),
            "{labels} {v}: {text}"
        );
        errors += v;
    }
    assert!(
        errors <= conflicts,
        "{errors} failed reconciles, {conflicts} conflicts: {refused:?} {text}"
    );
    if errors > 0.0 {
        eprintln!("note: {errors} finalizer patch(es) conflicted: {refused:?}");
    }
    Ok(())
}

fn forbidden<T: std::fmt::Debug>(what: &str, r: Result<T, kube::Error>) -> String {
    match r {
        Err(kube::Error::Api(e)) if e.code == 403 => e.message,
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn the_charts_service_account_is_refused_everything_else() -> TestResult {
    let server = ApiServer::shared()?;
    let admin = server.admin_client().await?;
    let op = operator("rbac-refused").await?;
    let sa = op.client.clone();
    let ns = server.namespace("rbac-refused-ns").await?;

    // The rendered rules: no wildcard, nothing on pods, nodes or namespaces,
    // no escalate/bind/impersonate.
    let rules = Value::Array(op.rules.clone()).to_string();
    for word in [
        "\"*\"",
        "\"pods",
        "\"nodes\"",
        "\"namespaces\"",
        "\"escalate\"",
        "\"bind\"",
        "\"impersonate\"",
    ] {
        assert!(!rules.contains(word), "{word} in the rules: {rules}");
    }

    let pods: Api<Pod> = Api::namespaced(sa.clone(), &ns);
    forbidden("list pods", pods.list(&ListParams::default()).await);
    forbidden("get a pod", pods.get("any").await);
    forbidden(
        "list pods everywhere",
        Api::<Pod>::all(sa.clone())
            .list(&ListParams::default())
            .await,
    );
    let exec = http::Request::post(format!(
        "/api/v1/namespaces/{ns}/pods/any/exec?command=true&stdout=true"
    ))
    .body(Vec::new())?;
    forbidden("exec into a pod", sa.request_text(exec).await);
    forbidden(
        "delete a namespace",
        Api::<Namespace>::all(sa.clone())
            .delete(&ns, &DeleteParams::default())
            .await,
    );
    forbidden(
        "list nodes",
        Api::<Node>::all(sa.clone())
            .list(&ListParams::default())
            .await,
    );

    // HTTPProxies: read only (it holds list/watch to grant them to Contour).
    let proxy: HTTPProxy = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "p"},
        "spec": {"virtualhost": {"fqdn": "p.example.com"},
            "routes": [{"services": [{"name": "s", "port": 80}]}]}}))?;
    let as_sa: Api<HTTPProxy> = Api::namespaced(sa.clone(), &ns);
    forbidden(
        "create an HTTPProxy",
        as_sa.create(&PostParams::default(), &proxy).await,
    );
    let created = Api::<HTTPProxy>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &proxy)
        .await?;
    forbidden(
        "update an HTTPProxy",
        as_sa.replace("p", &PostParams::default(), &created).await,
    );
    forbidden(
        "delete an HTTPProxy",
        as_sa.delete("p", &DeleteParams::default()).await,
    );
    as_sa.list(&ListParams::default()).await?;

    // Escalation: no Role or binding for a right it does not hold.
    let grants_pods: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": format!("rbac-test:{ns}:pods")},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}))?;
    let message = forbidden(
        "create a ClusterRole granting pods get",
        Api::<ClusterRole>::all(sa.clone())
            .create(&PostParams::default(), &grants_pods)
            .await,
    );
    assert!(
        message.contains("not currently held"),
        "not the escalation check: {message}"
    );
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "wide"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]}))?;
    forbidden(
        "create a Role with a wildcard verb",
        Api::<Role>::namespaced(sa.clone(), &ns)
            .create(&PostParams::default(), &role)
            .await,
    );
    let own = format!("{RELEASE}-contour-operator:{}", op.namespace);
    let roles: Api<ClusterRole> = Api::all(sa.clone());
    let mut widened = roles.get(&own).await?;
    widened
        .rules
        .get_or_insert_with(Vec::new)
        .push(serde_json::from_value(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
        )?);
    forbidden(
        "widen its own ClusterRole",
        roles.replace(&own, &PostParams::default(), &widened).await,
    );
    let to_admin: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("rbac-test:{ns}:admin")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
            "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": op.account, "namespace": op.namespace}]}))?;
    forbidden(
        "bind itself to cluster-admin",
        Api::<ClusterRoleBinding>::all(sa.clone())
            .create(&PostParams::default(), &to_admin)
            .await,
    );
    // ...while what it holds may be granted (the control case).
    let grants_held: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": format!("rbac-test:{ns}:held")},
        "rules": [{"apiGroups": ["projectcontour.io"], "resources": ["httpproxies"],
            "verbs": ["list", "watch"]}]}))?;
    roles.create(&PostParams::default(), &grants_held).await?;
    roles
        .delete(&format!("rbac-test:{ns}:held"), &DeleteParams::default())
        .await?;
    // Its leader Lease in its own namespace.
    let leases: Api<Lease> = Api::namespaced(sa.clone(), &op.namespace);
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "contour-operator"}, "spec": {"holderIdentity": "x"}}),
    )?;
    leases.create(&PostParams::default(), &lease).await?;
    let held = leases.get("contour-operator").await?;
    leases
        .replace("contour-operator", &PostParams::default(), &held)
        .await?;
    Ok(())
}
