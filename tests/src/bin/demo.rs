//! `make demo`: the main job on a local embedded control plane, as a user
//! does it in a cluster. Starts etcd + kube-apiserver on loopback, `helm
//! install`s the chart (CRDs, the operator's Deployment and RBAC), runs the
//! operator's pod, applies a ContourDeployment, runs the Contour and Envoy
//! pods the operator rendered, starts a kuard backend, applies the seed's
//! kuard example as Ingress, IngressRoute and HTTPProxy, and shows `kubectl
//! get` and real responses through Envoy. Pods run as local processes
//! (`contour_tests::pods`: no kubelet here), each with its own
//! ServiceAccount's token. Ctrl-C stops everything (`--once` stops after
//! showing the responses, for tests and CI).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::PodSpec;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use contour_tests::k8s::apply;
use contour_tests::pods::{Pods, Started};
use contour_tests::{ApiServer, TestNet, tools};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Where the operator and the sample installation live.
const OPERATOR_NS: &str = "contour-operator";
const CONTOUR_NS: &str = "projectcontour";

fn step(n: u32, what: &str) {
    println!("\n==> [{n}] {what}");
}

fn show(cmd: &mut Command) -> Result<String> {
    let out = cmd.output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines() {
        println!("    {line}");
    }
    if !out.status.success() {
        return Err(format!("{cmd:?} failed").into());
    }
    Ok(text)
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    show(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args),
    )
}

async fn through_envoy(port: u16, host: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .header("Host", host)
        .send()
        .await;
    match r {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Waits for `what` to be `Some`.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(t) = f().await {
            return Ok(t);
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{what}: not within 60s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the pod template `spec` of a workload as `pod`, with a token of its
/// ServiceAccount.
async fn run_pod(
    pods: &mut Pods,
    api: &ApiServer,
    client: &Client,
    namespace: &str,
    pod: &str,
    spec: &PodSpec,
) -> Result<Started> {
    let kubeconfig = match (
        &spec.service_account_name,
        spec.automount_service_account_token,
    ) {
        (Some(account), automount) if automount != Some(false) => {
            let path = pods.root().join(format!("{pod}.kubeconfig"));
            std::fs::write(
                &path,
                api.service_account_kubeconfig_yaml(namespace, account)
                    .await?,
            )?;
            Some(path)
        }
        _ => None,
    };
    Ok(pods.start(client, namespace, pod, spec, kubeconfig).await?)
}

fn template(spec: Option<k8s_openapi::api::core::v1::PodTemplateSpec>) -> Result<PodSpec> {
    Ok(spec
        .and_then(|t| t.spec)
        .ok_or("workload without a pod spec")?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let once = std::env::args().any(|a| a == "--once");
    contour_tests::init_crypto();
    let root = tools::repo_root();

    step(1, "start etcd + kube-apiserver on loopback (RBAC on)");
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    let kubeconfig = api.kubeconfig().to_path_buf();
    println!(
        "    API server: {}  kubeconfig: {}",
        api.url(),
        kubeconfig.display()
    );

    step(
        2,
        "helm install the chart: the CRDs, the operator's Deployment, ServiceAccount and RBAC",
    );
    let helm = tools::helm()?;
    show(
        Command::new(&helm)
            .args(["upgrade", "--install", "contour-operator"])
            .arg(root.join("helm/contour-operator"))
            .args(["--namespace", OPERATOR_NS, "--create-namespace"])
            .arg("--kubeconfig")
            .arg(&kubeconfig),
    )?;
    kubectl(
        &kubeconfig,
        &["-n", OPERATOR_NS, "get", "deployment,serviceaccount"],
    )?;

    step(
        3,
        "run the operator's pod (in a cluster: the kubelet; here a local process with its ServiceAccount's token)",
    );
    let binaries = BTreeMap::from([
        ("contour".to_string(), contour_tests::contour::binary()?),
        (
            "contour-operator".to_string(),
            contour_tests::contour::operator_binary()?,
        ),
        ("envoy".to_string(), tools::envoy()?),
    ]);
    let run_root = contour_tests::process::run_dir()?.join("demo");
    let mut operator_pods = Pods::new(run_root.join("operator"), binaries.clone())?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NS);
    let operator = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/name=contour-operator"))
        .await?
        .items
        .into_iter()
        .next()
        .ok_or("the chart installed no operator Deployment")?;
    let operator_name = operator.name_any();
    let operator_spec = template(operator.spec.map(|s| s.template))?;
    let operator_pod = run_pod(
        &mut operator_pods,
        api,
        &client,
        OPERATOR_NS,
        &format!("{operator_name}-0"),
        &operator_spec,
    )
    .await?;
    println!("    {} running", operator_pod.name);

    step(
        4,
        "kubectl apply -f examples/contourdeployment.yaml (the operator renders the installation)",
    );
    kubectl(&kubeconfig, &["create", "namespace", CONTOUR_NS])
        .or_else(|_| kubectl(&kubeconfig, &["get", "namespace", CONTOUR_NS]))?;
    let example = root.join("examples/contourdeployment.yaml");
    kubectl(
        &kubeconfig,
        &["apply", "-f", &example.display().to_string()],
    )?;
    let contour_deployments: Api<Deployment> = Api::namespaced(client.clone(), CONTOUR_NS);
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), CONTOUR_NS);
    let contour = eventually("the Contour Deployment", || async {
        contour_deployments
            .get_opt("contour-contour")
            .await
            .ok()
            .flatten()
    })
    .await
    .map_err(|e| format!("{e}\noperator log:\n{}", operator_pod.log("operator", 30)))?;
    let envoy = eventually("the Envoy DaemonSet", || async {
        daemonsets.get_opt("envoy-contour").await.ok().flatten()
    })
    .await?;
    kubectl(
        &kubeconfig,
        &[
            "-n",
            CONTOUR_NS,
            "get",
            "deployment,daemonset,service,secret",
        ],
    )?;

    step(
        5,
        "run the rendered Contour and Envoy pods (in a cluster: the contour Deployment and the envoy DaemonSet)",
    );
    let mut pods = Pods::new(run_root.join("installation"), binaries)?;
    pods.host("contour-contour", "127.0.0.1");
    let contour_spec = template(contour.spec.map(|s| s.template))?;
    let envoy_spec = template(envoy.spec.map(|s| s.template))?;
    pods.publish(&contour_spec)?;
    pods.publish(&envoy_spec)?;
    let contour_pod = run_pod(
        &mut pods,
        api,
        &client,
        CONTOUR_NS,
        "contour-contour-0",
        &contour_spec,
    )
    .await?;
    let envoy_pod = run_pod(
        &mut pods,
        api,
        &client,
        CONTOUR_NS,
        "envoy-contour-0",
        &envoy_spec,
    )
    .await?;
    let listen = pods.port(8080).ok_or("Envoy has no port 8080")?;
    println!("    Envoy's http listener (container port 8080) is 127.0.0.1:{listen} here");

    step(
        6,
        "kuard (in a cluster: the kuard Deployment's pods; here a tiny HTTP server on 8080 in a network namespace)",
    );
    let ns = api.namespace("demo").await?;
    let workload = root.join("examples/example-workload");
    kubectl(
        &kubeconfig,
        &[
            "-n",
            &ns,
            "apply",
            "-f",
            &workload.join("kuard.yaml").display().to_string(),
        ],
    )?;
    let kuard = TestNet::shared()?.backend_on("kuard", 8080)?;
    // The EndpointSlice controller's part: kuard's pods behind its Service.
    apply(
        &client,
        &ns,
        &serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kuard-1", "labels": {"kubernetes.io/service-name": "kuard"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": kuard.addr.port(), "protocol": "TCP"}],
            "endpoints": [{"addresses": [kuard.addr.ip().to_string()],
                           "conditions": {"ready": true}}]}),
    )
    .await?;

    step(
        7,
        "kubectl apply the seed's kuard example as Ingress, IngressRoute and HTTPProxy",
    );
    let hosts = [
        ("Ingress", "kuard-ingress.yaml", "kuard-ingress.local"),
        ("IngressRoute", "kuard-ingressroute.yaml", "kuard.local"),
        ("HTTPProxy", "kuard-httpproxy.yaml", "kuard-httpproxy.local"),
    ];
    for (_, file, _) in hosts {
        kubectl(
            &kubeconfig,
            &[
                "-n",
                &ns,
                "apply",
                "-f",
                &workload.join(file).display().to_string(),
            ],
        )?;
    }

    step(8, "responses through Envoy");
    let mut failed = false;
    for (kind, _, host) in hosts {
        let start = Instant::now();
        let (code, body) = loop {
            let got = through_envoy(listen, host).await;
            if got.0 == 200 || start.elapsed() > Duration::from_secs(30) {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!(
            "    {kind:<12} curl -H 'Host: {host}' http://127.0.0.1:{listen}/  ->  {code} {}",
            body.trim()
        );
        failed |= code != 200;
    }

    step(9, "kubectl get");
    kubectl(&kubeconfig, &["-n", CONTOUR_NS, "get", "contourdeployment"])?;
    for what in ["ingress", "ingressroute", "httpproxy"] {
        kubectl(&kubeconfig, &["-n", &ns, "get", what])?;
    }
    if failed {
        eprintln!(
            "\noperator log:\n{}\ncontour log:\n{}\nenvoy log:\n{}",
            operator_pod.log("operator", 20),
            contour_pod.log("contour", 30),
            envoy_pod.log("envoy", 30)
        );
        return Err("a route kind did not answer 200 through Envoy".into());
    }
    if once {
        println!("\ndemo: all three route kinds answered 200 through Envoy");
        return Ok(());
    }
    println!("\nTry: curl -H 'Host: kuard-httpproxy.local' http://127.0.0.1:{listen}/");
    println!(
        "     kubectl --kubeconfig {} -n {CONTOUR_NS} get contourdeployment -o yaml",
        kubeconfig.display()
    );
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    drop(pods);
    drop(operator_pods);
    Ok(())
}
