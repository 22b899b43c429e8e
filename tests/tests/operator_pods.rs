//! The operator's rendered pod specs, run as local processes
//! ([`contour_tests::pods`] says what is substituted, and why): the Contour
//! Deployment's container and the Envoy DaemonSet's init container,
//! container and drain sidecar, with their command, args and env as
//! rendered and their Secret, ConfigMap and emptyDir volumes. A request
//! through that Envoy proves the rendered bootstrap args, certificates and
//! ports work together; running the pod's preStop hooks as the kubelet does
//! proves the drain is wired right.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use kube::Api;
use serde_json::json;

use contour_crds::ContourDeployment;
use contour_operator::Context;
use contour_operator::validate::Images;
use contour_tests::k8s::{apply, service_for};
use contour_tests::pods::Pods;
use contour_tests::{ApiServer, TestNet, tools};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn rendered_contour_and_envoy_pods_serve_traffic() -> TestResult {
    rendered_pods_serve("pods", |_| json!({})).await
}

/// With `watchNamespaces` the Contour ServiceAccount may read only those
/// namespaces: the rendered `--watch-namespaces` must keep it within them.
#[tokio::test]
async fn rendered_pods_watching_one_namespace_serve_traffic() -> TestResult {
    rendered_pods_serve("scoped", |ns| json!({"contour": {"watchNamespaces": [ns]}})).await
}

fn pod_spec(t: PodTemplateSpec) -> Result<k8s_openapi::api::core::v1::PodSpec, &'static str> {
    t.spec.ok_or("no pod spec")
}

fn port_of(c: &Container, name: &str) -> Option<u16> {
    c.ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

async fn rendered_pods_serve(name: &str, spec: impl Fn(&str) -> serde_json::Value) -> TestResult {
    let server = ApiServer::shared()?;
    let admin = server.admin_client().await?;
    contour_tests::k8s::install_crds(&admin).await?;
    let ns = server.namespace(&format!("op-{name}")).await?;
    let net = TestNet::shared()?;
    let backend_name = format!("{name}-backend");
    let backend = net.backend(&backend_name)?;
    let (contour_name, envoy_name) = (format!("contour-{name}"), format!("envoy-{name}"));
    let fqdn = format!("{name}.example.com");
    for m in service_for("web", &[backend.addr]) {
        apply(&admin, &ns, &m).await?;
    }
    apply(
        &admin,
        &ns,
        &json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "web"},
            "spec": {"virtualhost": {"fqdn": fqdn},
                     "routes": [{"services": [{"name": "web", "port": 80}]}]}}),
    )
    .await?;

    // The operator renders an installation.
    let cds: Api<ContourDeployment> = Api::namespaced(admin.clone(), &ns);
    let cd: ContourDeployment = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment",
        "metadata": {"name": name}, "spec": spec(&ns)}))?;
    cds.create(&Default::default(), &cd).await?;
    let ctx = Context {
        client: admin.clone(),
        images: Images {
            contour: "contour:test".into(),
            envoy: "envoy:test".into(),
        },
        pruned: Default::default(),
    };
    contour_operator::reconcile(&ctx, &cds.get(name).await?).await?;
    let deployment = Api::<Deployment>::namespaced(admin.clone(), &ns)
        .get(&contour_name)
        .await?;
    let daemonset = Api::<DaemonSet>::namespaced(admin.clone(), &ns)
        .get(&envoy_name)
        .await?;
    let contour_pod = pod_spec(deployment.spec.ok_or("no spec")?.template)?;
    let envoy_pod = pod_spec(daemonset.spec.ok_or("no spec")?.template)?;

    let mut pods = Pods::new(
        std::env::temp_dir().join(format!("op-{name}-{}", std::process::id())),
        BTreeMap::from([
            ("contour".to_string(), contour_tests::contour::binary()?),
            ("envoy".to_string(), tools::envoy()?),
        ]),
    )?;
    pods.host(&contour_name, "127.0.0.1");
    pods.host(&format!("{contour_name}.{ns}"), "127.0.0.1");
    pods.publish(&contour_pod)?;
    pods.publish(&envoy_pod)?;
    let account = contour_pod
        .service_account_name
        .clone()
        .ok_or("no service account")?;
    let kubeconfig = pods.root().join("contour.kubeconfig");
    std::fs::write(
        &kubeconfig,
        server
            .service_account_kubeconfig_yaml(&ns, &account)
            .await?,
    )?;
    let contour = pods
        .start(
            &admin,
            &ns,
            &format!("{contour_name}-0"),
            &contour_pod,
            Some(kubeconfig),
        )
        .await?;
    let envoy = pods
        .start(
            &admin,
            &ns,
            &format!("{envoy_name}-abcde"),
            &envoy_pod,
            None,
        )
        .await?;
    let envoy_c = envoy.container("envoy")?;
    let manager = envoy.container("shutdown-manager")?;

    // Envoy's readiness probe as rendered, then a request through it.
    let ready_url = pods.url(
        envoy_c
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .ok_or("no probe")?,
    )?;
    let http_port = port_of(envoy_c, "http")
        .and_then(|p| pods.port(p))
        .ok_or("no http port")?;
    // No idle pooled connection: the drain below waits for every open
    // connection of the ingress listeners, kept-alive idle ones included.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let started = Instant::now();
    let (mut ready, mut served) = (false, String::new());
    while started.elapsed() < Duration::from_secs(60) {
        ready = ready
            || http
                .get(&ready_url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
        if ready
            && let Ok(r) = http
                .get(format!("http://127.0.0.1:{http_port}/"))
                .header("Host", &fqdn)
                .send()
                .await
            && r.status() == 200
        {
            served = r.text().await?;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = || {
        format!(
            "contour:\n{}\nenvoy:\n{}\nshutdown-manager:\n{}",
            contour.log("contour", 30),
            envoy.log("envoy", 30),
            envoy.log("shutdown-manager", 10)
        )
    };
    assert!(ready, "Envoy never ready at {ready_url}\n{}", logs());
    let proxy_status = Api::<kube::api::DynamicObject>::namespaced_with(
        admin.clone(),
        &ns,
        &contour_tests::k8s::resource_of(
            &json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy"}),
        )?,
    )
    .get("web")
    .await?
    .data["status"]
        .clone();
    assert!(
        served.contains(&backend_name),
        "no answer from the backend through Envoy: {served:?}\nproxy status {proxy_status}\n{}",
        logs()
    );

    // The pod stops: the kubelet runs both preStop hooks at once. Envoy's
    // waits on the sidecar; the sidecar's drains Envoy, then releases it.
    let hook = |c: &Container| {
        c.lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.clone())
            .ok_or(format!("{} has no preStop hook", c.name))
    };
    let envoy_hook = pods.url(
        hook(envoy_c)?
            .http_get
            .as_ref()
            .ok_or("envoy's hook is not an HTTP GET")?,
    )?;
    let http_hook = http.clone();
    let waiting = tokio::spawn(async move { http_hook.get(envoy_hook).send().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "Envoy's preStop returned before any drain"
    );
    let exec = hook(manager)?
        .exec
        .and_then(|e| e.command)
        .ok_or("the sidecar's hook is not an exec")?;
    let mut drain = pods.command(&envoy, manager, &exec)?;
    let out = tokio::task::spawn_blocking(move || drain.output()).await??;
    assert!(
        out.status.success(),
        "the sidecar's preStop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let released = tokio::time::timeout(Duration::from_secs(10), waiting).await??;
    assert_eq!(
        released?.status(),
        200,
        "Envoy's preStop was not released\n{}",
        logs()
    );
    let draining = http.get(&ready_url).send().await?;
    assert_eq!(
        draining.status(),
        503,
        "Envoy still reports ready while draining"
    );
    let root = pods.root().to_path_buf();
    drop(pods);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
