//! `make demo`: the main job on a local embedded control plane. Starts etcd +
//! kube-apiserver on loopback, installs the CRDs, makes the xDS certificates
//! with `contour certgen`, runs `contour serve`, starts Envoy from
//! `contour bootstrap`, starts a kuard-like backend, applies the seed's kuard
//! example as Ingress, IngressRoute and HTTPProxy, and shows `kubectl get`
//! and real responses through Envoy. Ctrl-C stops everything (`--once` stops
//! after showing the responses, for tests and CI).

use std::time::{Duration, Instant};

use contour_tests::k8s::{apply, install_crds, service_for};
use contour_tests::{ApiServer, ContourServe, TestNet, XdsPki, free_port};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn step(n: u32, what: &str) {
    println!("\n==> [{n}] {what}");
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let once = std::env::args().any(|a| a == "--once");
    contour_tests::init_crypto();

    step(1, "start etcd + kube-apiserver on loopback (RBAC on)");
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    println!(
        "    API server: {}  kubeconfig: {}",
        api.url(),
        api.kubeconfig().display()
    );

    step(2, "install the CRDs from helm/contour-operator/crds/");
    install_crds(&client).await?;
    let ns = api.namespace("demo").await?;

    step(
        3,
        "contour certgen: CA + contour + envoy certificates (in a cluster: Secrets by the operator)",
    );
    let certs = contour_tests::process::run_dir()?.join("certgen");
    contour_tests::contour::run_ok(&[
        "certgen",
        "--pem",
        "--overwrite",
        "--output-dir",
        &certs.display().to_string(),
    ])?;
    let pki = XdsPki {
        ca: certs.join("cacert.pem"),
        contour_cert: certs.join("contourcert.pem"),
        contour_key: certs.join("contourkey.pem"),
        envoy_cert: certs.join("envoycert.pem"),
        envoy_key: certs.join("envoykey.pem"),
    };
    println!("    wrote {}", certs.display());

    step(
        4,
        "contour serve: watch the API server, serve xDS over mutual TLS (in a cluster: the contour Deployment)",
    );
    let listen = free_port()?;
    let flags = [
        format!("--envoy-service-http-port={listen}"),
        format!("--leader-election-resource-namespace={ns}"),
        "--log-level=warn".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let contour = ContourServe::start(api, Some(&pki), &flags).await?;
    println!(
        "    xDS on 127.0.0.1:{}, metrics on http://127.0.0.1:{}/metrics",
        contour.xds_port, contour.http_port
    );

    step(
        5,
        "contour bootstrap + Envoy (in a cluster: the envoy DaemonSet's init container and envoy container)",
    );
    let envoy = contour_tests::contour::envoy_from_bootstrap(contour.xds_port, &pki, false).await?;
    println!(
        "    Envoy admin on http://127.0.0.1:{}, ingress_http on 127.0.0.1:{listen}",
        envoy.admin_port()
    );

    step(
        6,
        "a kuard backend (in a cluster: the kuard Deployment; here a tiny HTTP server in a network namespace)",
    );
    let kuard = TestNet::shared()?.backend("kuard")?;
    for m in service_for("kuard", &[kuard.addr]) {
        apply(&client, &ns, &m).await?;
    }

    step(
        7,
        "apply the seed's kuard example as Ingress, IngressRoute and HTTPProxy",
    );
    let hosts = [
        ("Ingress", "kuard-ingress.local"),
        ("IngressRoute", "kuard-ingressroute.local"),
        ("HTTPProxy", "kuard-httpproxy.local"),
    ];
    let manifests = [
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "kuard"},
               "spec": {"rules": [{"host": hosts[0].1, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "kuard", "port": {"number": 80}}}}]}}]}}),
        json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute", "metadata": {"name": "kuard"},
               "spec": {"virtualhost": {"fqdn": hosts[1].1},
                        "routes": [{"match": "/", "services": [{"name": "kuard", "port": 80}]}]}}),
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy", "metadata": {"name": "kuard"},
               "spec": {"virtualhost": {"fqdn": hosts[2].1},
                        "routes": [{"conditions": [{"prefix": "/"}], "services": [{"name": "kuard", "port": 80}]}]}}),
    ];
    for m in &manifests {
        apply(&client, &ns, m).await?;
    }

    step(8, "responses through Envoy");
    let mut failed = false;
    for (kind, host) in hosts {
        let start = Instant::now();
        let (code, body) = loop {
            let got = through_envoy(listen, host).await;
            if got.0 == 200 || start.elapsed() > Duration::from_secs(20) {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!(
            "    {kind:<12} curl -H 'Host: {host}' http://127.0.0.1:{listen}/  ->  {code} {}",
            body.trim()
        );
        failed |= code != 200;
    }

    step(9, "kubectl get");
    let kubeconfig = api.kubeconfig().display().to_string();
    for what in ["ingress", "ingressroute", "httpproxy"] {
        let out = std::process::Command::new("kubectl")
            .args(["--kubeconfig", &kubeconfig, "-n", &ns, "get", what])
            .output()?;
        print!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if failed {
        eprintln!(
            "\ncontour log:\n{}\nenvoy log:\n{}",
            contour.log(),
            envoy.log()
        );
        return Err("a route kind did not answer 200 through Envoy".into());
    }
    if once {
        println!("\ndemo: all three route kinds answered 200 through Envoy");
        return Ok(());
    }
    println!("\nTry: curl -H 'Host: kuard-httpproxy.local' http://127.0.0.1:{listen}/");
    println!("     kubectl --kubeconfig {kubeconfig} -n {ns} get httpproxy");
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    drop(envoy);
    drop(contour);
    Ok(())
}
