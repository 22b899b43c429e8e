//! The chart lints and renders with the real helm, ships the generated CRDs,
//! renders the operator's installation deterministically, refuses values of
//! the wrong type, and installs, upgrades and uninstalls against the real
//! API server (no kubelet: nothing runs, the objects are checked).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::Value;

use contour_crds::ContourDeployment;
use contour_tests::ApiServer;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const CRDS: [&str; 4] = [
    "httpproxies.projectcontour.io",
    "tlscertificatedelegations.projectcontour.io",
    "ingressroutes.contour.heptio.com",
    "contourdeployments.projectcontour.io",
];

fn chart() -> PathBuf {
    contour_tests::tools::repo_root().join("helm/contour-operator")
}

/// Runs helm with `args`; `(success, stdout, stderr)`.
fn run_helm(args: &[&str]) -> BoxResult<(bool, String, String)> {
    let bin = contour_tests::tools::helm()?;
    let out = Command::new(bin).args(args).output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Runs helm with `args` then the chart; stdout and stderr, or the failure.
fn helm(args: &[&str]) -> BoxResult<String> {
    let chart = chart();
    let chart = chart.to_str().ok_or("chart path is not UTF-8")?;
    let mut all = args.to_vec();
    all.push(chart);
    let (ok, stdout, stderr) = run_helm(&all)?;
    if !ok {
        return Err(format!("helm {args:?} failed:\n{stdout}{stderr}").into());
    }
    Ok(format!("{stdout}{stderr}"))
}

/// `helm template op CHART -n NAMESPACE ARGS...`: the rendered YAML only.
fn template(namespace: &str, args: &[&str]) -> BoxResult<String> {
    let chart = chart();
    let chart = chart.to_str().ok_or("chart path is not UTF-8")?;
    let mut all = vec!["template", "op", chart, "--namespace", namespace];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = run_helm(&all)?;
    if !ok {
        return Err(format!("helm template {args:?} failed:\n{stderr}").into());
    }
    Ok(stdout)
}

fn documents(yaml: &str) -> BoxResult<Vec<Value>> {
    Ok(contour_tests::k8s::yaml_documents(yaml)?)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    k.sort();
    k
}

/// Every optional part on, and values that reach the Deployment.
const FULL_VALUES: &[&str] = &[
    "--set",
    "serviceMonitor.enabled=true,serviceMonitor.interval=15s,serviceMonitor.labels.release=prom",
    "--set",
    "contourDeployment.create=true,contourDeployment.name=edge",
    "--set-json",
    r#"contourDeployment.spec={"envoy":{"workloadType":"Deployment"}}"#,
    "--set",
    "replicas=2,watchNamespace=ops,image.tag=dev,contourImage=c:1,envoyImage=e:1",
    "--set",
    "priorityClassName=high,nodeSelector.disk=ssd,podAnnotations.a=b",
];

#[test]
fn chart_lints() -> TestResult {
    let out = helm(&["lint", "--strict"])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let out = helm(&[
        "lint",
        "--strict",
        "--set",
        "serviceMonitor.enabled=true,contourDeployment.create=true,replicas=2",
    ])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    Ok(())
}

#[test]
fn chart_renders_the_generated_crds() -> TestResult {
    let out = helm(&["template", "contour", "--include-crds"])?;
    for name in CRDS {
        assert!(
            out.contains(&format!("name: {name}")),
            "{name} not rendered"
        );
    }
    Ok(())
}

#[test]
fn chart_renders_the_operator_deterministically() -> TestResult {
    let first = template("ops", &[])?;
    let second = template("ops", &[])?;
    assert_eq!(first, second, "two renderings differ");
    let docs = documents(&first)?;
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ],
        "{first}"
    );
    let full = "op-contour-operator";
    for (kind, name) in [
        ("ServiceAccount", full),
        ("Role", full),
        ("RoleBinding", full),
        ("Service", full),
        ("Deployment", full),
        ("ClusterRole", "op-contour-operator:ops"),
        ("ClusterRoleBinding", "op-contour-operator:ops"),
    ] {
        let doc = find(&docs, kind, name).ok_or(format!("{kind} {name} not rendered"))?;
        let labels = &doc["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/instance"], "op", "{doc}");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
        assert_eq!(labels["helm.sh/chart"], "contour-operator-0.1.0");
        if !kind.starts_with("Cluster") {
            assert_eq!(doc["metadata"]["namespace"], "ops", "{doc}");
        }
    }

    // The Deployment.
    let d = find(&docs, "Deployment", full).ok_or("Deployment")?;
    assert_eq!(d["spec"]["replicas"], 1);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], full);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "ghcr.io/contour-rs/contour-operator:v0.1.0");
    let args: Vec<&str> = c["args"]
        .as_array()
        .ok_or("args")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for arg in [
        "--contour-image=ghcr.io/contour-rs/contour:v0.1.0",
        "--envoy-image=docker.io/envoyproxy/envoy:v1.40.0",
        "--metrics-address=0.0.0.0:8080",
        "--leader-election-id=contour-operator",
    ] {
        assert!(args.contains(&arg), "{arg} not in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.contains("disable-leader-election")),
        "{args:?}"
    );
    let env = c["env"].to_string();
    assert!(
        env.contains("POD_NAMESPACE") && env.contains("metadata.namespace"),
        "{env}"
    );
    assert!(
        env.contains("POD_NAME") && env.contains("metadata.name"),
        "{env}"
    );
    assert!(!env.contains("WATCH_NAMESPACE"), "{env}");
    assert_eq!(c["ports"][0]["name"], "http-metrics");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    let svc = find(&docs, "Service", full).ok_or("Service")?;
    assert_eq!(svc["spec"]["ports"][0]["name"], "http-metrics");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    // The Lease Role names the lease the Deployment elects on.
    let role = find(&docs, "Role", full).ok_or("Role")?;
    assert!(
        role["rules"].to_string().contains("\"contour-operator\""),
        "{role}"
    );

    // The optional parts, and values reaching the Deployment.
    let on = template("ops", FULL_VALUES)?;
    assert_eq!(on, template("ops", FULL_VALUES)?, "two renderings differ");
    let docs = documents(&on)?;
    let sm = find(&docs, "ServiceMonitor", full).ok_or("ServiceMonitor")?;
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    let cd = find(&docs, "ContourDeployment", "edge").ok_or("ContourDeployment")?;
    assert_eq!(cd["apiVersion"], "projectcontour.io/v1alpha1");
    assert_eq!(cd["metadata"]["namespace"], "ops");
    assert_eq!(cd["spec"]["envoy"]["workloadType"], "Deployment");
    let d = find(&docs, "Deployment", full).ok_or("Deployment")?;
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "high");
    assert_eq!(pod["nodeSelector"]["disk"], "ssd");
    assert_eq!(d["spec"]["template"]["metadata"]["annotations"]["a"], "b");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "ghcr.io/contour-rs/contour-operator:dev");
    let args = c["args"].to_string();
    assert!(
        args.contains("--contour-image=c:1") && args.contains("--envoy-image=e:1"),
        "{args}"
    );
    assert!(c["env"].to_string().contains("WATCH_NAMESPACE"), "{c}");

    // A default ContourDeployment outside the watched namespace is refused.
    let chart = chart();
    let (ok, _, stderr) = run_helm(&[
        "template",
        "op",
        chart.to_str().ok_or("path")?,
        "--namespace",
        "ops",
        "--set",
        "contourDeployment.create=true,watchNamespace=elsewhere",
    ])?;
    assert!(!ok && stderr.contains("watchNamespace"), "{stderr}");
    Ok(())
}

#[test]
fn dashboards_ship_as_configmaps_for_the_grafana_sidecar() -> TestResult {
    let off = documents(&template("monitoring", &[])?)?;
    assert!(
        find(&off, "ConfigMap", "op-contour-operator-dashboard-contour").is_none(),
        "off by default"
    );
    let docs = documents(&template(
        "monitoring",
        &[
            "--set",
            "dashboards.enabled=true",
            "--set",
            "dashboards.namespace=grafana",
        ],
    )?)?;
    let dir = contour_tests::tools::repo_root().join("helm/contour-operator/dashboards");
    for board in ["contour", "envoy"] {
        let name = format!("op-contour-operator-dashboard-{board}");
        let cm = find(&docs, "ConfigMap", &name).ok_or(format!("{name} not rendered"))?;
        assert_eq!(cm["metadata"]["namespace"], "grafana");
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
        let shipped: Value = serde_json::from_str(
            cm["data"][format!("{board}.json")]
                .as_str()
                .ok_or("no dashboard data")?,
        )?;
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{board}.json")))?)?;
        assert_eq!(shipped, file, "{board}.json shipped as is");
    }
    Ok(())
}

#[test]
fn values_of_the_wrong_type_are_refused_naming_the_key() -> TestResult {
    let chart = chart();
    let chart = chart.to_str().ok_or("path")?;
    for (set, key) in [
        ("replicas=two", "/replicas"),
        ("image.tag=5", "/image/tag"),
        ("image=5", "/image"),
        ("serviceMonitor.enabled=yes", "/serviceMonitor/enabled"),
        (
            "contourDeployment.create=maybe",
            "/contourDeployment/create",
        ),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("logFormat=xml", "/logFormat"),
        ("resources.requests.cpu=lots", "/resources/requests/cpu"),
        ("replica=2", "replica"),
        ("serviceMonitor.intervall=10s", "intervall"),
    ] {
        let (ok, stdout, stderr) = run_helm(&["template", "op", chart, "--set", set])?;
        assert!(!ok, "--set {set} was accepted:\n{stdout}");
        assert!(
            stderr.contains("values don't meet the specifications of the schema"),
            "--set {set}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("'{key}'")),
            "--set {set}: the error does not name {key}: {stderr}"
        );
    }
    Ok(())
}

async fn wait_established(client: &Client, name: &str) -> BoxResult<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let started = Instant::now();
    loop {
        let established = crds.get_opt(name).await?.is_some_and(|c| {
            c.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
        if established {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("{name} not established").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Installs the ServiceMonitor CRD of the Prometheus Operator.
async fn install_service_monitor_crd(client: &Client) -> BoxResult<()> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(
        contour_tests::tools::servicemonitor_crd()?,
    )?)?;
    let name = "servicemonitors.monitoring.coreos.com";
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply("contour-rs-tests").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    wait_established(client, name).await
}

/// helm against the test API server, in `namespace`.
fn helm_kube(verb: &[&str], namespace: &str, args: &[&str]) -> BoxResult<String> {
    let server = ApiServer::shared()?;
    let kubeconfig = server.kubeconfig().to_str().ok_or("path")?.to_string();
    let mut all = verb.to_vec();
    all.extend_from_slice(&["--namespace", namespace, "--kubeconfig", &kubeconfig]);
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = run_helm(&all)?;
    if !ok {
        return Err(format!("helm {all:?} failed:\n{stdout}{stderr}").into());
    }
    Ok(stdout)
}

async fn exists<K>(api: &Api<K>, name: &str) -> BoxResult<bool>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api.get_opt(name).await?.is_some())
}

/// The release's objects that `helm uninstall` must remove, as
/// `(what, exists)`.
async fn release_objects(
    client: &Client,
    ns: &str,
    with_extras: bool,
) -> BoxResult<Vec<(String, bool)>> {
    let full = "op-contour-operator";
    let cluster = format!("{full}:{ns}");
    let mut out = vec![
        (
            "Deployment".to_string(),
            exists(&Api::<Deployment>::namespaced(client.clone(), ns), full).await?,
        ),
        (
            "ServiceAccount".to_string(),
            exists(&Api::<ServiceAccount>::namespaced(client.clone(), ns), full).await?,
        ),
        (
            "Service".to_string(),
            exists(&Api::<Service>::namespaced(client.clone(), ns), full).await?,
        ),
        (
            "Role".to_string(),
            exists(&Api::<Role>::namespaced(client.clone(), ns), full).await?,
        ),
        (
            "RoleBinding".to_string(),
            exists(&Api::<RoleBinding>::namespaced(client.clone(), ns), full).await?,
        ),
        (
            format!("ClusterRole {cluster}"),
            exists(&Api::<ClusterRole>::all(client.clone()), &cluster).await?,
        ),
        (
            format!("ClusterRoleBinding {cluster}"),
            exists(&Api::<ClusterRoleBinding>::all(client.clone()), &cluster).await?,
        ),
    ];
    if with_extras {
        let monitors = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            ns,
            &contour_operator::build::service_monitor_resource(),
        );
        out.push((
            "ServiceMonitor".to_string(),
            monitors.get_opt(full).await?.is_some(),
        ));
        out.push((
            "ContourDeployment".to_string(),
            exists(
                &Api::<ContourDeployment>::namespaced(client.clone(), ns),
                "edge",
            )
            .await?,
        ));
    }
    Ok(out)
}

#[tokio::test]
async fn installs_upgrades_and_uninstalls_against_the_api_server() -> TestResult {
    let server = ApiServer::shared()?;
    let client = server.admin_client().await?;
    install_service_monitor_crd(&client).await?;
    let ns = server.namespace("helm-install").await?;
    let other = server.namespace("helm-install-other").await?;
    let chart = chart();
    let chart = chart.to_str().ok_or("path")?;

    // Install, with the optional parts. helm installs the CRDs from crds/.
    let notes = helm_kube(
        &["install", "op", chart],
        &ns,
        &[
            "--set",
            "serviceMonitor.enabled=true,contourDeployment.create=true,contourDeployment.name=edge",
            "--set-json",
            r#"contourDeployment.spec={"envoy":{"workloadType":"Deployment"}}"#,
        ],
    )?;
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    assert!(
        notes.contains("kubectl -n") && notes.contains("get contourdeployment edge"),
        "NOTES: {notes}"
    );
    for (what, present) in release_objects(&client, &ns, true).await? {
        assert!(present, "{what} not installed");
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CRDS {
        crds.get(name).await?;
    }
    let full = "op-contour-operator";
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = serde_json::to_value(deployments.get(full).await?)?;
    assert_eq!(d["spec"]["replicas"], 1);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/contour-rs/contour-operator:v0.1.0");
    assert_eq!(c["resources"]["limits"]["memory"], "256Mi");
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&format!("{full}:{ns}"))
        .await?;
    let subject = &binding.subjects.unwrap_or_default()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        (full, Some(ns.as_str()))
    );
    let cd = Api::<ContourDeployment>::namespaced(client.clone(), &ns)
        .get("edge")
        .await?;
    assert_eq!(
        serde_json::to_value(&cd.spec)?["envoy"]["workloadType"],
        "Deployment"
    );

    // The same release name in another namespace: no cluster-scoped collision.
    helm_kube(&["install", "op", chart], &other, &[])?;
    for (what, present) in release_objects(&client, &other, false).await? {
        assert!(present, "{what} not installed in {other}");
    }

    // Upgrade with changed values.
    helm_kube(
        &["upgrade", "op", chart],
        &ns,
        &[
            "--reuse-values",
            "--set",
            "replicas=2,resources.limits.memory=512Mi",
        ],
    )?;
    let d = serde_json::to_value(deployments.get(full).await?)?;
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "512Mi"
    );
    let history = helm_kube(&["history", "op"], &ns, &[])?;
    assert!(history.contains("Upgrade complete"), "{history}");

    // Uninstall: everything goes but the CRDs (and the other release).
    helm_kube(&["uninstall", "op"], &ns, &[])?;
    let started = Instant::now();
    loop {
        let left: Vec<String> = release_objects(&client, &ns, true)
            .await?
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(what, _)| what)
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "left after uninstall: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for name in CRDS {
        assert!(crds.get_opt(name).await?.is_some(), "CRD {name} removed");
    }
    for (what, present) in release_objects(&client, &other, false).await? {
        assert!(present, "{what} of the release in {other} removed");
    }
    helm_kube(&["uninstall", "op"], &other, &[])?;
    Ok(())
}
