//! Scenario 6's upstream side: upstream Contour's counterpart of our
//! operator is its Gateway provisioner (`contour gateway-provisioner`, the
//! same binary as `contour serve`). It reconciles a Gateway whose
//! GatewayClass (controllerName `projectcontour.io/gateway-controller`, its
//! default) references a ContourDeployment through `parametersRef`, and
//! creates, for a default Gateway (13 children, all labelled
//! `projectcontour.io/owning-gateway-name=NAME`):
//!
//! - ServiceAccounts `contour-NAME` and `envoy-NAME`;
//! - ClusterRole and ClusterRoleBinding `contour-NS-NAME`;
//! - Role `contour-NAME` and RoleBinding `contour-rolebinding-NAME`;
//! - ContourConfiguration `contourconfig-NAME`;
//! - xDS TLS Secrets `contourcert-NAME` and `envoycert-NAME` (generated in
//!   process; no certgen Job);
//! - Deployment `contour-NAME`, DaemonSet `envoy-NAME`;
//! - Services `contour-NAME` and `envoy-NAME` (LoadBalancer).
//!
//! It runs as a process (its defaults; kubeconfig, metrics on a free
//! loopback port; leader election is off by default) pinned like the other
//! benches. Per instance: a ContourDeployment, a GatewayClass pointing at it
//! and a Gateway are created; "all children applied" is the Gateway's
//! `Accepted: True` condition, which the provisioner sets only after every
//! child was ensured without error (the children are then counted).
//!
//! No-op reconciles: the Gateway watch has no generation predicate, so a
//! changed annotation on the Gateway enqueues it; each trigger is followed
//! by a settle time (triggers at least [`gap`] apart, so that client-go's
//! default rate limiter does not throttle the provisioner's updates), and `controller_runtime_reconcile_total` of the
//! `gateway-controller` must have grown by exactly one (checked and
//! reported). Per reconcile, from the provisioner's metrics endpoint: wall
//! time (`controller_runtime_reconcile_time_seconds_sum` delta), API requests
//! (`rest_client_requests_total` deltas, GET = read, the rest = write); CPU
//! from `/proc/PID/stat` read before the trigger and after the settle (no
//! metrics scrape falls inside that window).

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::controller::{bench_cpus, install_upstream_crds, proc_stat, upstream_binary};
use super::operator::{Config, Instance, Run};
use super::{Result, err, ms};
use crate::prometheus::Metrics;
use crate::{ApiServer, free_port, process, tools};

/// The provisioner's default `--gateway-controller-name`.
pub const CONTROLLER_NAME: &str = "projectcontour.io/gateway-controller";
/// The label the provisioner puts on every child (value: the Gateway's name).
pub const OWNER_LABEL: &str = "projectcontour.io/owning-gateway-name";
/// The controller-runtime name of the Gateway reconciler.
const GATEWAY_CONTROLLER: &str = "gateway-controller";
/// The controller-runtime name of the GatewayClass reconciler.
const GATEWAYCLASS_CONTROLLER: &str = "gatewayclass-controller";
/// The annotation the no-op trigger changes.
const TOUCH: &str = "bench.contour-rs.dev/touch";

/// What the upstream side measured beyond [`Instance`], per instance.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// Reconciles of the Gateway controller from create until settled.
    pub create_gateway_reconciles: u64,
    /// Reconciles of the GatewayClass controller in the same window.
    pub create_class_reconciles: u64,
    /// Reconciles each no-op trigger produced (all 1 when the trigger works).
    pub per_trigger: Vec<u64>,
    /// Triggers whose reconcile had not happened within the settle time.
    pub late: usize,
    /// Reconcile errors seen (both controllers, whole instance).
    pub errors: u64,
    /// The children found, `Kind/name`.
    pub children: Vec<String>,
    /// Children whose resourceVersion the no-op reconciles changed.
    pub rewritten: Vec<String>,
    /// Updates (PUT) the API server counted during the no-op runs, by
    /// resource (`apiserver_request_total`; the bench itself sends none).
    pub noop_updates: Vec<(String, u64)>,
}

impl Checks {
    /// Whether every trigger produced exactly one reconcile.
    pub fn triggers_ok(&self) -> bool {
        self.per_trigger.iter().all(|n| *n == 1)
    }
}

/// The upstream side's result.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Per instance, like ours.
    pub instances: Vec<Instance>,
    /// Per instance, the checks.
    pub checks: Vec<Checks>,
}

impl Metrics {
    fn counters(&self) -> Counters {
        let of = |c: &'static str| {
            move |get: &dyn Fn(&str) -> Option<String>| get("controller").as_deref() == Some(c)
        };
        Counters {
            reconciles: self.sum("controller_runtime_reconcile_total", of(GATEWAY_CONTROLLER)),
            class_reconciles: self.sum(
                "controller_runtime_reconcile_total",
                of(GATEWAYCLASS_CONTROLLER),
            ),
            errors: self.sum("controller_runtime_reconcile_errors_total", |_| true),
            reconcile_secs: self.sum(
                "controller_runtime_reconcile_time_seconds_sum",
                of(GATEWAY_CONTROLLER),
            ),
            reads: self.sum("rest_client_requests_total", |get| {
                get("method").as_deref() == Some("GET")
            }),
            writes: self.sum("rest_client_requests_total", |get| {
                get("method").as_deref() != Some("GET")
            }),
        }
    }
}

/// The counters a run is measured with.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    reconciles: f64,
    class_reconciles: f64,
    errors: f64,
    reconcile_secs: f64,
    reads: f64,
    writes: f64,
}

impl Counters {
    fn since(self, before: Counters) -> Counters {
        Counters {
            reconciles: self.reconciles - before.reconciles,
            class_reconciles: self.class_reconciles - before.class_reconciles,
            errors: self.errors - before.errors,
            reconcile_secs: self.reconcile_secs - before.reconcile_secs,
            reads: self.reads - before.reads,
            writes: self.writes - before.writes,
        }
    }
}

/// Upstream's Gateway provisioner as a process; killed on drop.
pub struct Provisioner {
    child: Option<Child>,
    metrics_port: u16,
    log: PathBuf,
    http: reqwest::Client,
}

impl Provisioner {
    /// Spawns `contour gateway-provisioner` against the shared API server,
    /// pinned to [`bench_cpus`].
    pub fn start(api: &ApiServer, ns: &str) -> Result<Provisioner> {
        let metrics_port = free_port()?;
        let log = process::run_dir()?.join(format!("bench-gateway-provisioner-{ns}.log"));
        let mut program: Vec<std::ffi::OsString> = vec![upstream_binary()?.into()];
        if let Some(cpus) = bench_cpus() {
            program.splice(0..0, ["taskset".into(), "-c".into(), cpus.into()]);
        }
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..]).args([
            "gateway-provisioner".to_string(),
            "--no-incluster".into(),
            format!("--kubeconfig={}", api.kubeconfig().display()),
            format!("--metrics-addr=127.0.0.1:{metrics_port}"),
        ]);
        let child = process::spawn(cmd, &log)?;
        Ok(Provisioner {
            child: Some(child),
            metrics_port,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// Process id (taskset execs the provisioner, so it is the provisioner's).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// User + system CPU seconds so far.
    pub fn cpu_secs(&self) -> f64 {
        proc_stat(self.pid()).map(|s| s.cpu_secs).unwrap_or(0.0)
    }

    /// An error unless the process still runs (with its log's tail).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(err(format!(
                "gateway-provisioner exited with {status}:\n{}",
                process::tail(&self.log, 30)
            )));
        }
        Ok(())
    }

    /// One scrape of `/metrics`.
    pub async fn metrics(&self) -> Result<Metrics> {
        let text = self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Metrics::parse(&text))
    }

    /// Waits until both controllers run their workers (their caches synced).
    pub async fn wait_started(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let workers = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("Starting workers"))
                .count();
            if workers >= 2
                && let Ok(m) = self.metrics().await
                && m.has(
                    "controller_runtime_reconcile_total",
                    "controller",
                    GATEWAY_CONTROLLER,
                )
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "gateway-provisioner not started after {timeout:?}:\n{}",
                    process::tail(&self.log, 20)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn counters(&self) -> Result<Counters> {
        Ok(self.metrics().await?.counters())
    }

    /// Stops it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            process::kill(&mut c);
        }
    }
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Server-side applies the Gateway API CRDs the provisioner watches
/// (GatewayClass, Gateway) from the bundle upstream ships
/// (`examples/gateway/00-crds.yaml`, Gateway API v1.3.0) and waits until
/// they serve.
pub async fn install_gateway_crds(client: &Client) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use serde::Deserialize;
    let src = tools::upstream_contour(super::controller::upstream_version())?;
    let text = std::fs::read_to_string(src.join("examples/gateway/00-crds.yaml"))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::Value::deserialize(doc)?;
        if value["kind"] != "CustomResourceDefinition" {
            continue;
        }
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        if name == "gatewayclasses.gateway.networking.k8s.io"
            || name == "gateways.gateway.networking.k8s.io"
        {
            let crd: CustomResourceDefinition = serde_json::from_value(value.clone())?;
            crds.patch(
                name,
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&crd),
            )
            .await?;
        }
    }
    for plural in ["gatewayclasses", "gateways"] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &gateway_api(plural));
        let deadline = Instant::now() + Duration::from_secs(30);
        while api
            .list_metadata(&ListParams::default().limit(1))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err(err(format!("{plural}: the CRD does not serve after 30 s")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

fn gateway_api(plural: &str) -> ApiResource {
    let kind = match plural {
        "gatewayclasses" => "GatewayClass",
        _ => "Gateway",
    };
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn contour_configuration() -> ApiResource {
    ApiResource {
        group: "projectcontour.io".into(),
        version: "v1alpha1".into(),
        api_version: "projectcontour.io/v1alpha1".into(),
        kind: "ContourConfiguration".into(),
        plural: "contourconfigurations".into(),
    }
}

/// The children of Gateway `ns/name`, `Kind/name`, sorted: every object
/// with the provisioner's owner label in the kinds it creates (and
/// ConfigMaps, which it does not create, to notice if it ever did).
/// Cluster-scoped ones must also name the namespace (the label holds the
/// Gateway's name only).
pub async fn list_children(client: &Client, ns: &str, name: &str) -> Result<Vec<String>> {
    Ok(children_versions(client, ns, name)
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

/// [`list_children`] with each child's resourceVersion.
pub async fn children_versions(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Vec<(String, String)>> {
    let selector = ListParams::default().labels(&format!("{OWNER_LABEL}={name}"));
    let own: Vec<ApiResource> = vec![
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<DaemonSet>(&()),
        ApiResource::erase::<Role>(&()),
        ApiResource::erase::<RoleBinding>(&()),
        contour_configuration(),
    ];
    let cluster = [
        ApiResource::erase::<ClusterRole>(&()),
        ApiResource::erase::<ClusterRoleBinding>(&()),
    ];
    let mut out = Vec::new();
    for r in &own {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, r);
        for o in api.list_metadata(&selector).await?.items {
            let n = o.metadata.name.unwrap_or_default();
            out.push((
                format!("{}/{n}", r.kind),
                o.metadata.resource_version.unwrap_or_default(),
            ));
        }
    }
    for r in &cluster {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), r);
        for o in api.list_metadata(&selector).await?.items {
            let n = o.metadata.name.unwrap_or_default();
            if n.contains(&format!("-{ns}-")) {
                out.push((
                    format!("{}/{n}", r.kind),
                    o.metadata.resource_version.unwrap_or_default(),
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn accepted(gateway: &DynamicObject) -> bool {
    gateway.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Accepted" && c["status"] == "True")
        })
}

/// Updates (PUT) the API server has served so far, by `group/resource`
/// (with `/subresource`), from its `apiserver_request_total`.
async fn apiserver_updates(admin: &Client) -> Result<Vec<(String, f64)>> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let m = Metrics::parse(&admin.request_text(req).await?);
    let mut out: Vec<(String, f64)> = Vec::new();
    for s in m
        .samples()
        .iter()
        .filter(|s| s.name == "apiserver_request_total")
    {
        let get = |k: &str| {
            s.labels
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        // The API server renews its own identity Lease every 10 s; the
        // provisioner runs without leader election.
        if !matches!(get("verb"), "PUT" | "UPDATE") || get("resource") == "leases" {
            continue;
        }
        let mut key = match get("group") {
            "" => get("resource").to_string(),
            g => format!("{g}/{}", get("resource")),
        };
        if !get("subresource").is_empty() {
            key = format!("{key}/{}", get("subresource"));
        }
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v += s.value,
            None => out.push((key, s.value)),
        }
    }
    Ok(out)
}

/// `after - before` of [`apiserver_updates`], non-zero entries only.
fn updates_since(after: &[(String, f64)], before: &[(String, f64)]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| {
            let b = before
                .iter()
                .find(|(bk, _)| bk == k)
                .map(|(_, bv)| *bv)
                .unwrap_or(0.0);
            (k.clone(), (v - b).round().max(0.0) as u64)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    out.sort();
    out
}

/// Waits until the Gateway controller's reconcile count stays the same for
/// `quiet`; returns the counters then.
async fn settled(p: &mut Provisioner, quiet: Duration, timeout: Duration) -> Result<Counters> {
    let deadline = Instant::now() + timeout;
    let mut last = p.counters().await?;
    loop {
        tokio::time::sleep(quiet).await;
        p.check_alive()?;
        let now = p.counters().await?;
        if now.reconciles == last.reconciles && now.class_reconciles == last.class_reconciles {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(err("gateway-provisioner keeps reconciling"));
        }
        last = now;
    }
}

/// The settle time after a no-op trigger (`OPERATOR_UPSTREAM_SETTLE_MS`, 150).
pub fn settle() -> Duration {
    Duration::from_millis(super::env_or("OPERATOR_UPSTREAM_SETTLE_MS", 150))
}

/// The least time from one no-op trigger to the next
/// (`OPERATOR_UPSTREAM_GAP_MS`, 400). The provisioner builds its REST config
/// without a QPS, so client-go's default limiter applies (5 requests/s,
/// burst 10, one bucket per resource type in controller-runtime's client);
/// a no-op reconcile updates three types once each, so triggers closer than
/// 200 ms apart end up waiting on the limiter rather than measuring the
/// reconcile.
pub fn gap() -> Duration {
    Duration::from_millis(super::env_or("OPERATOR_UPSTREAM_GAP_MS", 400))
}

async fn create_instance(
    admin: &Client,
    ns: &str,
    name: &str,
    class: &str,
) -> Result<Api<DynamicObject>> {
    let post = PostParams::default();
    let cds: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        ns,
        &ApiResource {
            group: "projectcontour.io".into(),
            version: "v1alpha1".into(),
            api_version: "projectcontour.io/v1alpha1".into(),
            kind: "ContourDeployment".into(),
            plural: "contourdeployments".into(),
        },
    );
    let cd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment",
        "metadata": {"name": name}, "spec": {}}))?;
    cds.create(&post, &cd).await?;
    let classes: Api<DynamicObject> = Api::all_with(admin.clone(), &gateway_api("gatewayclasses"));
    let gc: DynamicObject = serde_json::from_value(json!({
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
    "metadata": {"name": class},
    "spec": {
        "controllerName": CONTROLLER_NAME,
        "parametersRef": {
            "group": "projectcontour.io", "kind": "ContourDeployment",
            "name": name, "namespace": ns,
        },
    }}))?;
    classes.create(&post, &gc).await?;
    let gateways: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ns, &gateway_api("gateways"));
    let gw: DynamicObject = serde_json::from_value(json!({
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
    "metadata": {"name": name},
    "spec": {
        "gatewayClassName": class,
        "listeners": [{
            "name": "http", "protocol": "HTTP", "port": 80,
            "allowedRoutes": {"namespaces": {"from": "All"}},
        }],
    }}))?;
    gateways.create(&post, &gw).await?;
    Ok(gateways)
}

/// Runs the upstream side: the same instances and no-op runs as ours.
pub async fn run(cfg: &Config) -> Result<Outcome> {
    let api = ApiServer::shared()?;
    let admin = api.admin_client().await?;
    // Ours' CRDs (among them the ContourDeployment one; an empty spec means
    // the same under both schemas), upstream's ContourConfiguration and
    // ExtensionService, and the Gateway API's GatewayClass and Gateway.
    crate::k8s::install_crds(&admin).await?;
    install_upstream_crds(&admin).await?;
    install_gateway_crds(&admin).await?;
    let ns = api.namespace("op-bench-upstream").await?;
    let mut p = Provisioner::start(api, &ns)?;
    p.wait_started(Duration::from_secs(60)).await?;
    let (settle, gap) = (settle(), gap());
    let mut out = Outcome::default();
    for i in 0..cfg.instances.max(1) {
        let name = format!("bench-{i}");
        let class = format!("{ns}-{name}");
        let c0 = settled(&mut p, Duration::from_millis(200), Duration::from_secs(30)).await?;
        let cpu0 = p.cpu_secs();
        let t0 = Instant::now();
        let gateways = create_instance(&admin, &ns, &name, &class).await?;
        let deadline = t0 + Duration::from_secs(60);
        loop {
            if gateways.get(&name).await.is_ok_and(|g| accepted(&g)) {
                break;
            }
            p.check_alive()?;
            if Instant::now() > deadline {
                return Err(err(format!(
                    "gateway {ns}/{name} not accepted after 60 s:\n{}",
                    process::tail(&p.log, 20)
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = t0.elapsed();
        let cpu1 = p.cpu_secs();
        let at_accept = p.counters().await?.since(c0);
        let versions = children_versions(&admin, &ns, &name).await?;
        let children: Vec<String> = versions.iter().map(|(n, _)| n.clone()).collect();
        let after = settled(&mut p, Duration::from_millis(200), Duration::from_secs(30)).await?;
        let created = after.since(c0);
        let first = Run {
            took,
            reads: at_accept.reads.round() as u64,
            writes: at_accept.writes.round() as u64,
            cpu_secs: cpu1 - cpu0,
        };
        let mut checks = Checks {
            create_gateway_reconciles: created.reconciles.round() as u64,
            create_class_reconciles: created.class_reconciles.round() as u64,
            errors: created.errors.round() as u64,
            children,
            ..Checks::default()
        };
        let updates0 = apiserver_updates(&admin).await?;
        let mut noop = Vec::new();
        for k in 0..cfg.noop_runs {
            let started = Instant::now();
            let before = p.counters().await?;
            let cpu0 = p.cpu_secs();
            gateways
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {TOUCH: k.to_string()}}})),
                )
                .await?;
            tokio::time::sleep(settle).await;
            let mut cpu1 = p.cpu_secs();
            let mut d = p.counters().await?.since(before);
            if d.reconciles < 1.0 {
                checks.late += 1;
                let deadline = Instant::now() + Duration::from_secs(10);
                while d.reconciles < 1.0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    cpu1 = p.cpu_secs();
                    d = p.counters().await?.since(before);
                }
            }
            checks.per_trigger.push(d.reconciles.round() as u64);
            checks.errors += d.errors.round() as u64;
            noop.push(Run {
                took: Duration::from_secs_f64(d.reconcile_secs.max(0.0)),
                reads: d.reads.round() as u64,
                writes: d.writes.round() as u64,
                cpu_secs: cpu1 - cpu0,
            });
            tokio::time::sleep(gap.saturating_sub(started.elapsed())).await;
        }
        checks.noop_updates = updates_since(&apiserver_updates(&admin).await?, &updates0);
        let now = children_versions(&admin, &ns, &name).await?;
        checks.rewritten = now
            .iter()
            .filter(|v| !versions.contains(v))
            .map(|(n, _)| n.clone())
            .collect();
        let sorted = {
            let mut v: Vec<Duration> = noop.iter().map(|r| r.took).collect();
            v.sort();
            v
        };
        eprintln!(
            "upstream {name}: all {} children applied after {:.1} ms ({} + {} reconciles), no-op p50 {:.2} ms, reconciles per trigger {:?}",
            checks.children.len(),
            ms(took),
            checks.create_gateway_reconciles,
            checks.create_class_reconciles,
            ms(super::percentile(&sorted, 0.5)),
            checks.per_trigger
        );
        eprintln!(
            "upstream {name}: updates (PUT) during the {} no-op reconciles (API server's count): {:?}",
            cfg.noop_runs, checks.noop_updates
        );
        if !checks.rewritten.is_empty() {
            eprintln!(
                "upstream {name}: children rewritten by the no-op reconciles: {}",
                checks.rewritten.join(", ")
            );
        }
        if i == 0 {
            eprintln!(
                "upstream children of {name}: {}",
                checks.children.join(", ")
            );
        }
        out.instances.push(Instance {
            name,
            first,
            children: checks.children.len(),
            reported_writes: 0,
            noop,
        });
        out.checks.push(checks);
    }
    let errors: Vec<String> = std::fs::read_to_string(&p.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Reconciler error"))
        .map(|l| l.chars().take(400).collect())
        .collect();
    if !errors.is_empty() {
        eprintln!(
            "upstream: {} reconcile error(s) in the provisioner's log, e.g.:\n{}",
            errors.len(),
            errors
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    p.stop();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_prometheus_text_format() {
        let m = Metrics::parse(
            "# HELP x y\n# TYPE controller_runtime_reconcile_total counter\n\
             controller_runtime_reconcile_total{controller=\"gateway-controller\",result=\"success\"} 3\n\
             controller_runtime_reconcile_total{controller=\"gateway-controller\",result=\"error\"} 1\n\
             controller_runtime_reconcile_total{controller=\"gatewayclass-controller\",result=\"success\"} 2\n\
             controller_runtime_reconcile_time_seconds_sum{controller=\"gateway-controller\"} 0.25\n\
             rest_client_requests_total{code=\"200\",host=\"127.0.0.1:6443\",method=\"GET\"} 40\n\
             rest_client_requests_total{code=\"201\",host=\"127.0.0.1:6443\",method=\"POST\"} 7\n\
             rest_client_requests_total{code=\"200\",host=\"a\\\"b,c}\",method=\"PUT\"} 2\n\
             go_goroutines 12\n",
        );
        let c = m.counters();
        assert_eq!(c.reconciles, 4.0);
        assert_eq!(c.class_reconciles, 2.0);
        assert_eq!(c.reconcile_secs, 0.25);
        assert_eq!(c.reads, 40.0);
        assert_eq!(c.writes, 9.0);
        assert_eq!(m.sum("go_goroutines", |_| true), 12.0);
        assert!(m.has("controller_runtime_reconcile_total", "result", "error"));
    }
}
